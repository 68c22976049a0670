"""A check's judgement, independent of Dagster: the asset checks turn it into a check result."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    passed: bool
    warning_only: bool  # a failure that should warn, not block
    description: str
    metadata: dict = field(default_factory=dict)
