"""pg_restore: restore a custom-format archive into a database, and read an archive's catalogue
(`--list`) into typed entries."""

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.commands import Streaming, ToolConnection
from ops_pipelines.errors import CommandFailed

# A catalogue line: "3375; 0 16390 TABLE DATA public orders ops" (dump id; table oid, object oid;
# then what it is: its kind, of one to three words, its schema or "-", name and owner).
_TOC_LINE = re.compile(r"^(\d+);\s+\d+\s+\d+\s+(.+)$")


@dataclass(frozen=True)
class TocEntry:
    dump_id: int
    description: str  # "TABLE DATA public orders ops", "INDEX public orders_pkey ops" ...

    @property
    def is_table_data(self) -> bool:
        return self.description.startswith("TABLE DATA ")


def parse_catalogue(text: str) -> list[TocEntry]:
    """The entries of `pg_restore --list` output; its comment lines (";") left out."""
    entries = []
    for line in text.splitlines():
        match = _TOC_LINE.match(line.strip())
        if match is not None:
            entries.append(TocEntry(int(match.group(1)), match.group(2)))
    return entries


def find(bin_dir: Path | None = None, min_major: int | None = None) -> Path:
    return commands.find_program("pg_restore", bin_dir or commands.pg_bin_dir(min_major=min_major))


@contextlib.contextmanager
def catalogue_of_stdin(pg_restore: Path) -> Iterator[Streaming]:
    """`pg_restore --list` reading the archive from stdin, its output collected: the caller feeds
    `stdin`, closes it, `wait`s, then reads `parse_catalogue(collected_stdout)`."""
    with commands.streaming([pg_restore, "--list"], feed_stdin=True, collect_stdout=True) as listing:
        yield listing


def restore(pg_restore: Path, connection: ToolConnection, archive: Path, *, jobs: int, owners: bool) -> list[str]:
    """Restore `archive` into the (empty) database; returns the errors pg_restore reported (none
    means a clean restore). `owners`: keep the dump's owners and privileges (a real recovery), else
    leave them out (a sandbox has none of the roles)."""
    keep = [] if owners else ["--no-owner", "--no-privileges"]
    args = [pg_restore, *keep, f"--jobs={jobs}", "--dbname", connection.dbname, archive]
    try:
        result = commands.run(args, timeout=24 * 3600, env=connection.env, ok_codes=(0, 1))
    except CommandFailed as exc:
        return [str(exc)]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    if result.returncode != 0 and not errors:
        errors = [f"pg_restore exited with {result.returncode}: {commands.error_summary(result.stderr)}"]
    return errors
