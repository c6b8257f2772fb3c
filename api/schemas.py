"""Request and response models. They generate ``/openapi.json`` and validate request bodies;
responses are built as plain dicts on the hot path and checked against these by the tests."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Reason(BaseModel):
    """Why an item is suggested; ``kind`` says which structured fields accompany ``text``."""

    model_config = ConfigDict(extra="allow")
    kind: str = Field(examples=["shared_topics"])
    text: str = Field(examples=["You both talk about rust, embedded"])


class PersonItem(BaseModel):
    user_id: str
    score: float
    tribe_id: int | None
    reasons: list[Reason]
    tracking_id: str
    cold_start: bool | None = None


class ConversationItem(BaseModel):
    thread_id: str
    score: float
    tribe_id: int | None
    topics: list[str]
    participants: list[str]
    last_activity: str
    reasons: list[Reason]
    tracking_id: str
    cold_start: bool | None = None


class PeoplePage(BaseModel):
    user_id: str
    model_version: str
    cold_start: bool
    items: list[PersonItem]
    next_cursor: str | None


class ConversationsPage(BaseModel):
    user_id: str
    model_version: str
    cold_start: bool
    items: list[ConversationItem]
    next_cursor: str | None


class UserTribe(BaseModel):
    tribe_id: int | None
    label: str
    affinity: float
    primary: bool


class UserTribes(BaseModel):
    user_id: str
    model_version: str
    cold_start: bool
    tribes: list[UserTribe]


class TribeSummary(BaseModel):
    tribe_id: int
    label: str
    size: int
    topics: list[str]
    cohesion: float | None = Field(
        default=None,
        description="the share of its members' conversation that stays in the tribe (0..1; "
        "1: they talk only among themselves); null for models built before it was measured",
    )


class TribesPage(BaseModel):
    model_version: str
    items: list[TribeSummary]
    next_cursor: str | None


class TribeConversation(BaseModel):
    """A live thread on a tribe's page (no ``tracking_id``: the page is the same for everyone)."""

    thread_id: str
    score: float = Field(
        description="the chance that a newcomer's reply here is answered: the thread's record "
        "with first-time repliers, shrunk towards its starter's answer rate (0..1)"
    )
    tribe_id: int | None
    topics: list[str]
    participants: list[str]
    last_activity: str
    reasons: list[Reason]


class TribePage(TribeSummary):
    model_version: str
    starter_pack: list[str] = Field(description="members most likely to answer a newcomer")
    conversations: list[TribeConversation] = Field(
        description="the tribe's live threads, most recently active first"
    )


class EventsResult(BaseModel):
    accepted: int
    by_type: dict[str, int]
    ignored_erased: int


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_kind: Literal["user", "thread"]
    # As ids in events: no control characters, no surrounding spaces.
    target_id: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$",
    )
    action: Literal["dismiss", "accept", "report"]
    tracking_id: str | None = Field(default=None, max_length=64)


class FeedbackResult(BaseModel):
    stored: bool
    user_id: str
    target_kind: str
    target_id: str
    action: str


class ModelInfo(BaseModel):
    version: str
    built_at: str | None
    counts: dict[str, int]
    summary: dict[str, float | int]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class ProblemDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
