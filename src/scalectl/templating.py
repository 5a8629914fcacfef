"""Jinja for scalectl's packaged templates (templates/): the plan's config files and the
HTML reports of loadtest and drill load and render them the same way."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from scalectl import resources

if TYPE_CHECKING:
    import jinja2


def make_environment(filters: Mapping[str, Callable[..., Any]] | None = None) -> jinja2.Environment:
    """A new Jinja environment over the packaged templates, with `filters` added to Jinja's.

    Undefined names are errors (StrictUndefined), text is not escaped unless a template
    asks for it ({% autoescape true %}, as the HTML reports do), and block tags leave no
    blank lines behind. Build one per set of filters and keep it: it caches compiled
    templates.
    """
    import jinja2  # lazy: keeps `scalectl --help` fast

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.read_template(name)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(filters or {})
    return env


@functools.cache
def environment() -> jinja2.Environment:
    """The one environment of the reports (Jinja's own filters), built on first use."""
    return make_environment()
