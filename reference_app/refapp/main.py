"""The app factory. Run it with `gunicorn -c gunicorn.conf.py refapp.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import BaseRoute

from refapp import api, debug, errors, health, logs, settings
from refapp.auth import AuthMiddleware
from refapp.ratelimit import RateLimitMiddleware
from refapp.services import Services
from refapp.shedding import LoadShedMiddleware
from refapp.telemetry import TelemetryMiddleware

DESCRIPTION = """A CV/document submission service: submissions are stored in PostgreSQL and
analysed by background jobs. Every /api request carries an API key
(`Authorization: Bearer <key>`, or `X-API-Key`); the key's user owns what it creates and sees
only its own submissions and jobs, and the key's tier (premium, basic or free) sets its rate
limit and load-shedding order. Every response carries `X-Request-ID`, and limited ones
`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`."""


def create_app(config: settings.Settings | None = None) -> FastAPI:
    config = config or settings.get()
    logs.configure(config.log_level)
    deps = Services(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await deps.start()
        try:
            yield
        finally:
            await deps.stop()

    app = FastAPI(
        title="scalectl reference app",
        version=health.VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        # The app exports Prometheus metrics and JSON logs itself. Left on, FastAPI's native
        # OpenTelemetry looks up its providers (and the environment) on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = deps
    generated = app.openapi
    app.openapi = lambda: api.declare_bearer(generated())  # type: ignore[method-assign]
    errors.install(app)
    routers = [api.router, health.router, *([debug.router] if config.debug else [])]
    # The routers' routes go straight into the app's, first: FastAPI's include_router puts
    # each router behind a layer that matches its routes twice per request, a tenth of a
    # cached read's CPU. Each route already has its full path and the router's responses,
    # and nothing here uses what an inclusion adds (prefix, tags, dependencies). Nor
    # `app.dependency_overrides`: no route has a FastAPI dependency to override, and these
    # routes would not see them (their provider is their router's, None).
    app.router.routes[:0] = [route for router in routers for route in router.routes]
    routes: list[BaseRoute] = list(app.routes)  # to label metrics with
    # Added last runs first: telemetry sees every response; the key is resolved next (the
    # tier comes from it); shedding runs before the limiter so an overloaded worker does
    # not spend Redis round trips on refusals.
    app.add_middleware(RateLimitMiddleware, limiter=deps.limiter)
    app.add_middleware(LoadShedMiddleware, monitor=deps.monitor)
    app.add_middleware(AuthMiddleware, resolver=deps.keys)
    app.add_middleware(TelemetryMiddleware, routes=routes, settings=config)
    return app


app = create_app()
