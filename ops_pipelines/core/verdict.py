"""A check's judgement, independent of Dagster: the asset checks turn it into a check result."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    passed: bool
    warning_only: bool  # a failure that should warn, not block
    description: str
    metadata: dict = field(default_factory=dict)

    @classmethod
    def ok(cls, description: str, metadata: dict | None = None, *, warning_only: bool = False) -> "Verdict":
        """Passed (`warning_only`: of a check whose failures only warn; Dagster keeps its severity)."""
        return cls(True, warning_only, description, metadata or {})

    @classmethod
    def warn(cls, description: str, metadata: dict | None = None) -> "Verdict":
        """Failed, as a warning: the check's result is shown, nothing downstream is blocked."""
        return cls(False, True, description, metadata or {})

    @classmethod
    def fail(cls, description: str, metadata: dict | None = None) -> "Verdict":
        """Failed, as an error."""
        return cls(False, False, description, metadata or {})
