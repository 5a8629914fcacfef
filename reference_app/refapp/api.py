"""The submissions API. Reads are cache-aside (refapp.cache) over the read pool; writes go
to the primary in one transaction, then invalidate what they made stale.

Every route runs for an API key's user (refapp.auth resolved it before routing) and sees
only that user's submissions and jobs: another user's ids answer 404, exactly like ids
that do not exist. Cached rows carry their owner's user_id, checked after every cache read,
so a cache entry filled by one user is never served to another."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import (
    APIRouter,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from pydantic import TypeAdapter

from refapp import auth, cachekeys, clients, store
from refapp.cachekeys import Invalidation
from refapp.models import (
    BIGINT_MAX,
    ERROR_RESPONSES,
    NOT_FOUND,
    Error,
    Job,
    Stats,
    Submission,
    SubmissionAccepted,
    SubmissionCreate,
    SubmissionPage,
    SubmissionUpdate,
)
from refapp.principal import Principal
from refapp.principal import caller as caller_of
from refapp.services import Services

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
UserId = Annotated[int, Path(gt=0, le=BIGINT_MAX)]
_SUBMISSION = TypeAdapter(Submission)
_PAGE = TypeAdapter(SubmissionPage)
_JOB = TypeAdapter(Job)
_STATS = TypeAdapter(Stats)


@dataclass(frozen=True)
class Call:
    """What every route needs about its request: the app's services, the API key's user,
    and whether the client asked for a response from the origin (`Cache-Control:
    no-cache`, RFC 9111 §5.2.1.4: cached reads then skip the cache)."""

    deps: Services
    caller: Principal
    fresh: bool


# Not a FastAPI dependency: each one costs its own resolution on every request (a fifth of
# a cached read's CPU with the security scheme's), and this only reads the scope.
def _call(request: Request) -> Call:
    found = caller_of(request.scope)
    if found is None:  # only if the app was assembled without AuthMiddleware
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(auth.UNAUTHORIZED["detail"]))
    cache_control = clients.header(request.scope, b"cache-control") or ""
    fresh = "no-cache" in {d.strip().lower() for d in cache_control.split(",")}
    return Call(request.app.state.services, found, fresh)


def declare_bearer(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the API key scheme on every /api operation: refapp.auth
    checks the key in a middleware, so no route declares it as a dependency."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["HTTPBearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `rk_...`",
    }
    for path, operations in schema.get("paths", {}).items():
        if path.startswith(router.prefix + "/"):
            for operation in operations.values():
                operation["security"] = [{"HTTPBearer": []}]
    return schema


def _owned(found: Any, caller: Principal) -> bool:
    return found is not None and found.get("user_id") == caller.user_id


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")


def encode_cursor(item: dict[str, Any]) -> str:
    raw = json.dumps([item["created_at"], item["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Opaque to clients; anything we did not mint is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, item_id = json.loads(raw)
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None:
            raise ValueError("naive time")
        return when, UUID(item_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from exc


@router.post(
    "/submissions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmissionAccepted,
    responses={403: {"model": Error, "description": "user_id is not the key's user"}},
    summary="Submit a document for analysis",
)
async def create_submission(
    body: SubmissionCreate, response: Response, request: Request
) -> dict[str, Any]:
    ctx = _call(request)
    deps, owner = ctx.deps, ctx.caller.user_id
    if body.user_id is not None and body.user_id != owner:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "user_id must be the API key's user")
    submission_id, job_id = uuid4(), uuid4()
    created = await deps.new_submissions.submit(
        store.NewSubmission(submission_id, job_id, owner, body)
    )
    await deps.cache.invalidate(Invalidation.for_write(user_ids=[owner]))
    # No enqueue here: the committed job row is in the outbox, and a queue worker's relay
    # sends it (refapp.outbox).
    response.headers["Location"] = f"/api/jobs/{job_id}"
    return created


# Cached reads answer with the cache's serialized body (Cache.body): a hit skips the
# response model's validation and serialization, which the first answer already did.
@router.get("/submissions/{submission_id}", response_model=Submission, responses=NOT_FOUND)
async def get_submission(submission_id: UUID, request: Request) -> Response:
    ctx = _call(request)
    deps = ctx.deps
    key = cachekeys.submission(str(submission_id))
    found = await deps.cache.get_or_load(
        key,
        deps.settings.cache_ttl_submission,
        lambda: deps.db.read(lambda db: store.get_submission(db, submission_id)),
        fresh=ctx.fresh,
    )
    if not _owned(found, ctx.caller):
        raise _not_found("submission")
    return _json(deps.cache.body(key, found, _SUBMISSION))


@router.get(
    "/users/{user_id}/submissions",
    response_model=SubmissionPage,
    responses={400: {"model": Error, "description": "Invalid cursor"}, **NOT_FOUND},
)
async def list_user_submissions(
    user_id: UserId,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    ctx = _call(request)
    deps = ctx.deps
    if user_id != ctx.caller.user_id:  # any other user, existing or not
        raise _not_found("user")
    after = decode_cursor(cursor) if cursor else None

    async def load() -> dict[str, Any]:
        # One row more than asked says whether there is a next page.
        rows = await deps.db.read(
            lambda db: store.list_user_submissions(db, user_id, limit + 1, after)
        )
        items = rows[:limit]
        more = len(rows) > limit
        return {"items": items, "next_cursor": encode_cursor(items[-1]) if more else None}

    version = None if ctx.fresh else await deps.cache.user_list_version(user_id)
    if version is None:  # asked fresh, or no Redis: another worker's write could not reach L1
        return _json(_PAGE.dump_json(_PAGE.validate_python(await load())))
    key = cachekeys.user_page(user_id, version, limit, cursor)
    page = await deps.cache.get_or_load(key, deps.settings.cache_ttl_user_submissions, load)
    return _json(deps.cache.body(key, page, _PAGE))


@router.patch("/submissions/{submission_id}", response_model=Submission, responses=NOT_FOUND)
async def update_submission(
    submission_id: UUID, body: SubmissionUpdate, request: Request
) -> dict[str, Any]:
    ctx = _call(request)
    deps = ctx.deps
    updated = await deps.db.write(
        lambda db: store.update_submission(
            db, submission_id, ctx.caller.user_id, body.title, body.content
        )
    )
    if updated is None:
        raise _not_found("submission")
    await deps.cache.invalidate(
        Invalidation.for_write(submission_ids=[str(submission_id)], user_ids=[updated["user_id"]])
    )
    return updated


@router.delete(
    "/submissions/{submission_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
async def delete_submission(submission_id: UUID, request: Request) -> Response:
    ctx = _call(request)
    deps = ctx.deps
    user_id = await deps.db.write(
        lambda db: store.delete_submission(db, submission_id, ctx.caller.user_id)
    )
    if user_id is None:
        raise _not_found("submission")
    await deps.cache.invalidate(
        Invalidation.for_write(submission_ids=[str(submission_id)], user_ids=[user_id])
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/jobs/{job_id}", response_model=Job, responses=NOT_FOUND)
async def get_job(job_id: UUID, request: Request) -> Response:
    ctx = _call(request)
    deps = ctx.deps
    key = cachekeys.job(str(job_id))
    found = await deps.cache.get_or_load(
        key,
        deps.settings.cache_ttl_job,
        lambda: deps.db.read(lambda db: store.get_job(db, job_id)),
        fresh=ctx.fresh,
    )
    if not _owned(found, ctx.caller):
        raise _not_found("job")
    return _json(deps.cache.body(key, found, _JOB))


@router.get("/stats", response_model=Stats)
async def get_stats(request: Request) -> Response:
    """Service-wide counts (no user's rows): any valid key may read them."""
    ctx = _call(request)
    deps = ctx.deps
    key = cachekeys.stats()
    found = await deps.cache.get_or_load(
        key, deps.settings.cache_ttl_stats, lambda: deps.db.read(store.stats), fresh=ctx.fresh
    )
    return _json(deps.cache.body(key, found, _STATS))
