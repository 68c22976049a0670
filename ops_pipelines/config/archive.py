"""Archive rules: which rows move where (same database or another), with their children."""

from typing import Annotated

from pydantic import (
    Field,
    PlainValidator,
    model_validator,
)

from ops_pipelines.config.fields import Dsn, DurationText, FixedDuration, Name, QualifiedName, Section


def _key_columns(value: object) -> tuple[str, ...]:
    """`order_id`, or `[order_id, line_no]` for a composite foreign key; each column once."""
    columns = [value] if isinstance(value, str) else value
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"expected a column name or a list of column names, got {value!r}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"column {repeated[0]} is listed twice")
    return tuple(columns)


KeyColumns = Annotated[tuple[str, ...], PlainValidator(_key_columns)]


class ArchiveChild(Section):
    """A table whose rows reference the rule's table (or a child's: `children` nest, order ->
    shipment -> shipment_line). Its rows move with the rows they reference."""

    table: QualifiedName
    fk: KeyColumns  # the child's column(s) referencing its parent's key: `order_id` or `[order_id, line_no]`
    children: list["ArchiveChild"] = []


class ArchiveDestination(Section):
    schema_: str = Field(default="archive", alias="schema", min_length=1)
    dsn: Dsn | None = None  # another database (the runbook's "archive DB"); default: same one


class ArchiveRule(Section):
    name: Name
    table: QualifiedName
    age_column: str
    older_than: DurationText
    status_column: str | None = None
    status_in: list[str] = []
    where: str | None = None  # extra SQL predicate, written by the DBA who owns this file
    children: list[ArchiveChild] = []
    # Tables whose foreign keys into this rule's tables you accept: their rows stay, and their
    # ON DELETE rule applies (a reference to a moved row fails the batch, or is cascaded / nulled).
    # Any other referencing table that is not a child refuses the rule before a row moves.
    allow_references_from: list[QualifiedName] = []
    destination: ArchiveDestination = ArchiveDestination()
    # Delete the selected rows without keeping a copy (data nobody needs back: sensor readings, logs).
    # Only this switch purges: no value of `destination` ever does, so a typo there cannot delete.
    purge: bool = False
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    max_rows: int | None = Field(default=None, ge=1)
    max_runtime: FixedDuration | None = None  # stop cleanly between batches after this long
    # Pause between batches while this replica replays more than max_replica_lag behind (pt-archiver's
    # --check-slave-lag): deletes in bulk must not leave the ERP's read replicas behind.
    replica_dsn: Dsn | None = None
    max_replica_lag: FixedDuration | None = None

    @model_validator(mode="after")
    def _status_pair(self) -> "ArchiveRule":
        if bool(self.status_column) != bool(self.status_in):
            raise ValueError("status_column and status_in go together: set both or neither")
        if (self.replica_dsn is None) != (self.max_replica_lag is None):
            raise ValueError("replica_dsn and max_replica_lag go together: set both or neither")
        if self.purge and self.destination.dsn is not None:
            raise ValueError("purge: true keeps no copy, so destination.dsn would never be used: remove one of the two")
        return self
