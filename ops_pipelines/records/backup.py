"""What `backup` and `offsite_copy` materializations record, for the sensors, the recovery view and
the history that read them back."""

from dataclasses import dataclass

import dagster as dg

from ops_pipelines.records.metadata import value, with_sizes

BACKUP_STAMP = "backup_stamp"  # metadata: which backup a `backup` materialization made


def backup_stamp(metadata) -> str | None:
    """The stamp of the backup a `backup` materialization made, or None (one made before this entry)."""
    stamp = value(metadata, BACKUP_STAMP)
    return str(stamp) if stamp is not None else None


@dataclass(frozen=True)
class OffsiteCopyRecord:
    """One `offsite_copy` materialization: which backup is off-site, where, and what the copy cost."""

    backup: str
    uri: str
    sha256: str  # the drill's record of the copy; empty in copies recorded before it was kept
    bytes: int
    copied_bytes: int
    seconds: float
    already_there: bool

    def to_metadata(self) -> dict:
        return with_sizes(
            {
                "uri": dg.MetadataValue.url(self.uri),
                "backup": dg.MetadataValue.text(self.backup),
                "sha256": dg.MetadataValue.text(self.sha256),
                "bytes": dg.MetadataValue.int(self.bytes),
                "copied_bytes": dg.MetadataValue.int(self.copied_bytes),
                "seconds": dg.MetadataValue.float(round(self.seconds, 3)),
                "mb_per_second": dg.MetadataValue.float(round(self.copied_bytes / 1e6 / max(self.seconds, 1e-6), 1)),
                "already_there": dg.MetadataValue.bool(self.already_there),
            }
        )

    @classmethod
    def from_metadata(cls, metadata) -> "OffsiteCopyRecord | None":
        """None when the materialization names no backup (not an off-site copy this code wrote)."""
        backup = value(metadata, "backup")
        if not backup:
            return None
        return cls(
            backup=str(backup),
            uri=str(value(metadata, "uri", "")),
            sha256=str(value(metadata, "sha256", "") or ""),
            bytes=int(value(metadata, "bytes", 0) or 0),
            copied_bytes=int(value(metadata, "copied_bytes", 0) or 0),
            seconds=float(value(metadata, "seconds", 0.0) or 0.0),
            already_there=bool(value(metadata, "already_there", False)),
        )
