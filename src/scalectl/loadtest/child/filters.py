"""The SLO file's groups that count only some requests of their endpoints (`status: 2xx`,
`tag: checkout`), recorded apart inside Locust: each such group's requests in a Recorder of
their own under the key `group NAME`, with the latency the main histograms get (corrected
in the open model), per second, shipped from workers to the master like the main one.

No locust or gevent here: plugin.py calls `record` from its `request` listener when the
SLO file has such groups. Only requests of the groups' endpoints cost more than a dict
lookup, so the status class is kept for the grouped endpoints only.

Tags: Locust's requests have none, so scalectl reads them from the request's `context`,
`context={"tags": ["checkout"]}` on the client call or from the user's `context()`
(docs/loadtest.md, "Groups").
"""

from __future__ import annotations

from typing import Any

from scalectl.loadtest.checks import status_in
from scalectl.loadtest.child.recording import Recorder
from scalectl.loadtest.results import METRIC_REQUEST_TYPE
from scalectl.loadtest.slo import GroupThresholds, SloSpec

TAGS_CONTEXT_KEY = "tags"  # context={"tags": [...]}: the request's tags for group filters
GROUP_METHOD = "group"  # what the filtered groups are recorded under: "group NAME"

# A group's filter: its name, its status codes and classes (empty: any), its tag (None: any)
_Filter = tuple[str, frozenset[str], str | None]


def _tagged(tags: Any, tag: str) -> bool:
    """Whether a context's tags (a string, or a list, tuple or set of them) hold `tag`."""
    if isinstance(tags, str):
        return tags == tag
    return isinstance(tags, list | tuple | set | frozenset) and tag in tags


class GroupFilters:
    """The filtered groups of one Locust process and what they recorded."""

    def __init__(self) -> None:
        self.groups: list[tuple[str, GroupThresholds]] = []
        self.by_endpoint: dict[tuple[str, str], list[_Filter]] = {}
        self.recorder = Recorder()

    def load(self, spec: SloSpec) -> None:
        """The filtered groups of `spec` (the plugin's part of the SLO file)."""
        self.groups = [(name, g) for name, g in spec.groups.items() if g.filtered]

    def _filters(self, request_type: str, name: str) -> list[_Filter]:
        if request_type == METRIC_REQUEST_TYPE:
            return []
        key = f"{request_type} {name}"
        return [
            (group_name, frozenset(g.status or ()), g.tag)
            for group_name, g in self.groups
            if g.matches(key)
        ]

    def record(
        self,
        request_type: str,
        name: str,
        micros: int,
        error: str | None,
        response: Any,
        context: dict[str, Any] | None,
    ) -> None:
        """Count one request (`micros` µs, `error` its failure message or None) in every
        filtered group whose endpoints, status and tag it matches."""
        filters = self.by_endpoint.get((request_type, name))
        if filters is None:
            filters = self.by_endpoint[(request_type, name)] = self._filters(request_type, name)
        if not filters:
            return
        code = getattr(response, "status_code", None)
        tags = context.get(TAGS_CONTEXT_KEY) if context else None
        for group_name, statuses, tag in filters:
            if statuses and not status_in(statuses, code):
                continue
            if tag is not None and not _tagged(tags, tag):
                continue
            self.recorder.record(GROUP_METHOD, group_name, micros, error)

    def export(self) -> dict[str, Any]:
        """What was recorded since the last export, as Recorder.export(); it starts over."""
        data = self.recorder.export()
        self.recorder.release()
        self.recorder = Recorder()
        return data
