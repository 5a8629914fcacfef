"""The SQL of the API. Functions take a counted `Session` and return JSON-ready dicts (ids
and times as strings), the one shape the cache stores and the response models read.

Ownership: a submission's user_id is its owner (the API key's user that created it); a
job's owner is its submission's. Writes filter on the owner in SQL; reads return the
owner's user_id in the row (cached with it) and the route compares it, so a cached row is
never served to another user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from refapp.db import Row, Session
from refapp.models import SubmissionCreate

_SUMMARY = "id, user_id, title, priority, status, version, created_at, updated_at"
_FULL = _SUMMARY + ", content"
_JOB = (
    "j.id, j.submission_id, j.kind, j.status, j.attempts, j.result, j.error, j.enqueued_at,"
    " j.started_at, j.finished_at, s.user_id"
)


def _jsonable(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[key] = value
    return out


@dataclass(frozen=True)
class NewSubmission:
    """A submission and its analyse job, as a POST creates them."""

    id: UUID
    job_id: UUID
    owner: int
    body: SubmissionCreate


async def create_submissions(db: Session, rows: list[NewSubmission]) -> list[dict[str, Any]]:
    """Every row's submission and job in one statement, one round trip and one commit
    (several requests' rows when refapp.batching groups them); the answers in order."""
    # Each job row references the submission row inserted by the same statement (a
    # data-modifying CTE; the foreign key is checked at its end). One statement shape for
    # any number of rows (arrays), so it is prepared once.
    found = await db.fetchall(
        "WITH s AS (INSERT INTO submissions (id, user_id, title, content, priority)"
        " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[], %s::text[])"
        " RETURNING id)"
        " INSERT INTO jobs (id, submission_id, kind)"
        " SELECT j.id, s.id, 'analyse' FROM unnest(%s::uuid[], %s::uuid[]) AS j (id, sid)"
        " JOIN s ON s.id = j.sid"
        " RETURNING submission_id, status",
        (
            [r.id for r in rows],
            [r.owner for r in rows],
            [r.body.title for r in rows],
            [r.body.content for r in rows],
            [r.body.priority for r in rows],
            [r.job_id for r in rows],
            [r.id for r in rows],
        ),
    )
    status = {row["submission_id"]: row["status"] for row in found}
    return [{"id": str(r.id), "job_id": str(r.job_id), "status": status[r.id]} for r in rows]


async def get_submission(db: Session, submission_id: UUID) -> dict[str, Any] | None:
    row = await db.fetchone(
        f"SELECT {_FULL} FROM submissions WHERE id = %s AND deleted_at IS NULL",
        (submission_id,),
    )
    return _jsonable(row) if row else None


async def list_user_submissions(
    db: Session, user_id: int, limit: int, after: tuple[datetime, UUID] | None
) -> list[dict[str, Any]]:
    """One page, newest first, keyset-paginated on (created_at, id): the index
    submissions_user_keyset serves it without OFFSET's skipped-row cost."""
    if after is None:
        rows = await db.fetchall(
            f"SELECT {_SUMMARY} FROM submissions WHERE user_id = %s AND deleted_at IS NULL"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (user_id, limit),
        )
    else:
        rows = await db.fetchall(
            f"SELECT {_SUMMARY} FROM submissions WHERE user_id = %s AND deleted_at IS NULL"
            " AND (created_at, id) < (%s, %s) ORDER BY created_at DESC, id DESC LIMIT %s",
            (user_id, after[0], after[1], limit),
        )
    return [_jsonable(r) for r in rows]


async def update_submission(
    db: Session, submission_id: UUID, owner: int, title: str | None, content: str | None
) -> dict[str, Any] | None:
    row = await db.fetchone(
        "UPDATE submissions SET title = coalesce(%s, title), content = coalesce(%s, content),"
        " version = version + 1, updated_at = now()"
        f" WHERE id = %s AND user_id = %s AND deleted_at IS NULL RETURNING {_FULL}",
        (title, content, submission_id, owner),
    )
    return _jsonable(row) if row else None


async def delete_submission(db: Session, submission_id: UUID, owner: int) -> int | None:
    """Soft delete; the owner's user_id, or None if `owner` had nothing to delete."""
    row = await db.fetchone(
        "UPDATE submissions SET deleted_at = now(), updated_at = now()"
        " WHERE id = %s AND user_id = %s AND deleted_at IS NULL RETURNING user_id",
        (submission_id, owner),
    )
    return int(row["user_id"]) if row else None


async def get_job(db: Session, job_id: UUID) -> dict[str, Any] | None:
    """The job with its owner's user_id (the response model leaves that out)."""
    row = await db.fetchone(
        f"SELECT {_JOB} FROM jobs j JOIN submissions s ON s.id = j.submission_id WHERE j.id = %s",
        (job_id,),
    )
    return _jsonable(row) if row else None


async def stats(db: Session) -> dict[str, Any]:
    # One statement: one round trip, and both counts from the same snapshot.
    rows = await db.fetchall(
        "SELECT 'submissions' AS counted, status, count(*) AS n FROM submissions"
        " WHERE deleted_at IS NULL GROUP BY status"
        " UNION ALL SELECT 'jobs', status, count(*) FROM jobs GROUP BY status"
    )
    submissions = {r["status"]: int(r["n"]) for r in rows if r["counted"] == "submissions"}
    return {
        "submissions": submissions,
        "jobs": {r["status"]: int(r["n"]) for r in rows if r["counted"] == "jobs"},
        "total": sum(submissions.values()),
    }
