"""What the hub stores: a virtual key, and one request-log row."""

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class KeyRecord:
    key_hash: str
    key_prefix: str
    alias: str
    models: list[str] = field(default_factory=list)  # empty: every model
    max_budget: float | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_service(self) -> bool:
        """A service key may act for a person (the agent host's and the UI's keys)."""
        return self.metadata.get("service") is True

    @property
    def user_id(self) -> str | None:
        """The account a person's key belongs to; None for team and service keys."""
        value = self.metadata.get("user_id")
        return value if isinstance(value, str) else None

    @property
    def login(self) -> str | None:
        value = self.metadata.get("login")
        return value if isinstance(value, str) else None

    @property
    def holder(self) -> str:
        """Who is refused, in an error a person may read: their account, or the key itself."""
        return f"account '{self.login}'" if self.login else f"API key '{self.alias}'"


@dataclass
class UsageRow:
    """One proxied request. `request_id` is LiteLLM's call id, shared by the retries and fallbacks of a request."""

    request_id: str
    started_at: datetime
    ended_at: datetime
    key_hash: str | None
    key_alias: str | None
    model_requested: str | None
    model_group: str | None
    deployment: str | None
    deployment_id: str | None
    api_base: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    ttft_ms: float | None
    status: str  # success | failure
    http_status: int | None
    error: str | None
    stream: bool
    # Answered from LiteLLM's response cache (its cost is 0). Last, with a default: spooled rows predate it.
    cache_hit: bool = False

    @property
    def latency_ms(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() * 1000

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "UsageRow":
        return cls(
            **{
                **data,
                "started_at": datetime.fromisoformat(data["started_at"]),
                "ended_at": datetime.fromisoformat(data["ended_at"]),
            }
        )

    def merged_with(self, later: "UsageRow") -> "UsageRow":
        """Two events of one request: a success outranks a failure, else the later event wins.

        The request's latency runs from its first attempt, so a fallback's time counts in full.
        """
        if self.status == "success" and later.status != "success":
            return self
        start = min(self.started_at, later.started_at)
        return UsageRow(
            **{
                **later.__dict__,
                "started_at": start,
                "model_requested": self.model_requested or later.model_requested,
            }
        )
