"""The manifest beside every backup: what was dumped, how, and how many rows each table held.

One typed record used by the backup, its checks, retention, the restore test and the report.
Row counts are read in the same snapshot as the dump, so a restore must reproduce them exactly.
"""

import builtins
import datetime as dt
import json
from dataclasses import MISSING, asdict, dataclass, field, fields

from ops_pipelines.core.backups.signing import sign, signature_problem
from ops_pipelines.errors import OpsError

MANIFEST_VERSION = 1


class ManifestError(OpsError):
    """A manifest is missing, unreadable or incomplete."""


@dataclass(frozen=True)
class BackupManifest:
    database: str
    dump_key: str
    sha256: str
    bytes: int  # of the compressed file
    dump_bytes: int  # of pg_dump's output before compression
    format: str  # pg_dump format: custom
    compression: str  # zstd
    compression_level: int
    pg_dump_version: str
    server_version: str
    server_version_num: int
    started_at: dt.datetime
    finished_at: dt.datetime
    snapshot: str
    source: str  # user@host:port/dbname, never the password
    table_counts: dict[str, int] = field(default_factory=dict)
    counted: str = "all"  # or "listed": only backup.count_tables were counted
    # The server's roles and tablespaces (pg_dumpall --globals-only --no-role-passwords) beside the dump,
    # so a restore can bring back owners and grants; None: not taken (older backup, or not permitted).
    globals_key: str | None = None
    globals_sha256: str | None = None
    manifest_version: int = MANIFEST_VERSION
    signature: str | None = None  # HMAC of the rest (core/backups/signing.py), when a key is set

    def binding_problem(self, database: str, stamp: str) -> str | None:
        """Why this manifest may not stand for backup `stamp` of `database`: a manifest names its own
        database and dump, and a copy of another backup's manifest (planted or swapped) names another."""
        own_dump = f"{database}/{stamp}.dump.zst"
        if self.database != database:
            return f"names database {self.database!r}, but is stored as a backup of {database!r}"
        if self.dump_key != own_dump:
            return f"names dump {self.dump_key}, but is stored as the manifest of {own_dump}"
        if self.globals_key is not None and self.globals_key != f"{database}/{stamp}.globals.sql":
            return f"names roles file {self.globals_key}, which is not backup {stamp}'s"
        return None

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def total_rows(self) -> int:
        return sum(self.table_counts.values())

    @property
    def server_major(self) -> int:
        return self.server_version_num // 10000

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("signature")
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        data = sign(data)
        data["duration_seconds"] = round(self.duration_seconds, 3)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(
        cls, text: str | builtins.bytes, where: str = "manifest", *, untrusted: bool = False
    ) -> "BackupManifest":  # `bytes` is a field
        """`untrusted`: read from a store others may write (S3): with a key set it must be signed."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: expected a JSON object")
        problem = signature_problem(data, required=untrusted)
        if problem:
            raise ManifestError(f"{where}: {problem}: refused")
        data.pop("duration_seconds", None)  # derived
        names = {f.name for f in fields(cls)}
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ManifestError(f"{where}: missing {', '.join(missing)}")
        try:
            data = {k: v for k, v in data.items() if k in names}
            data["started_at"] = dt.datetime.fromisoformat(data["started_at"])
            data["finished_at"] = dt.datetime.fromisoformat(data["finished_at"])
            data["table_counts"] = {str(k): int(v) for k, v in data.get("table_counts", {}).items()}
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{where}: {exc}") from None
