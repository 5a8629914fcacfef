"""Request and response bodies (they also make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

Priority = Literal["high", "default", "low"]
# PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail in the database.
NO_NUL = r"^[^\x00]*$"
BIGINT_MAX = 2**63 - 1


class SubmissionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The owner is the API key's user; user_id may be given, and must then be that user.
    user_id: Annotated[int, Field(gt=0, le=BIGINT_MAX)] | SkipJsonSchema[None] = None
    title: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    content: str = Field(min_length=1, max_length=100_000, pattern=NO_NUL)
    priority: Priority = "default"


class SubmissionUpdate(BaseModel):
    # The schema says what a client should send: one or both fields, as strings. (null is
    # accepted as "unchanged" but not advertised.)
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    # Constraints on the str member only: on the union they would run against None too.
    title: (
        Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)] | SkipJsonSchema[None]
    ) = None
    content: (
        Annotated[str, Field(min_length=1, max_length=100_000, pattern=NO_NUL)]
        | SkipJsonSchema[None]
    ) = None

    @model_validator(mode="after")
    def _something_to_change(self) -> SubmissionUpdate:
        if self.title is None and self.content is None:
            raise ValueError("give title, content or both")
        return self


class SubmissionAccepted(BaseModel):
    id: UUID
    job_id: UUID
    status: str


class SubmissionSummary(BaseModel):
    id: UUID
    user_id: int
    title: str
    priority: Priority
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


class Submission(SubmissionSummary):
    content: str


class SubmissionPage(BaseModel):
    items: list[SubmissionSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class Job(BaseModel):
    id: UUID
    submission_id: UUID
    kind: str
    status: str
    attempts: int
    result: Any | None
    error: str | None
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Stats(BaseModel):
    submissions: dict[str, int] = Field(description="Live submissions by status")
    jobs: dict[str, int] = Field(description="Jobs by status")
    total: int = Field(description="Live submissions")


class Error(BaseModel):
    detail: str


class HealthCheck(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    componentId: str | None = None
    componentType: str
    observedValue: Any
    observedUnit: str | None = None
    status: Literal["pass", "warn", "fail"]
    time: str
    output: str | None = None


class Health(BaseModel):
    """application/health+json (draft-inadarei-api-health-check)."""

    status: Literal["pass", "warn", "fail"]
    version: str
    releaseId: str
    serviceId: str
    description: str
    checks: dict[str, list[HealthCheck]] = Field(default_factory=dict)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "Missing, unknown or revoked API key"},
    429: {"model": Error, "description": "Rate limited; see Retry-After and RateLimit-*"},
    503: {"model": Error, "description": "Overloaded or a dependency is down; see Retry-After"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "Not found"}}
