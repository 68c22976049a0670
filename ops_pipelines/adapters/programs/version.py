"""The version of a PostgreSQL program, from its `--version` line, e.g.
`pg_dump (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)` or `postgres (PostgreSQL) 17beta1`."""

import re
from dataclasses import dataclass
from pathlib import Path

from ops_pipelines.adapters import commands
from ops_pipelines.errors import CommandFailed

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    line: str  # the whole `--version` line, as the manifest records it

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def parse_version(output: str) -> Version:
    line = output.strip().splitlines()[0] if output.strip() else ""
    match = _VERSION.search(line)
    if match is None:
        raise CommandFailed(f"cannot read a PostgreSQL version from {line!r}")
    return Version(int(match.group(1)), int(match.group(2) or 0), line)


def version(program: Path) -> Version:
    """What `program --version` says."""
    return parse_version(commands.run([program, "--version"], timeout=30).stdout)


def at_least(name: str, min_major: int, bin_dir: Path | None = None) -> tuple[Path, Version]:
    """`name` from `bin_dir` (else from the newest installed PostgreSQL at least `min_major`, else
    PATH) and its version; CommandFailed, with what to install, when none is that new."""
    directory = bin_dir or commands.pg_bin_dir(min_major=min_major)
    try:
        program = commands.find_program(name, directory)
    except CommandFailed:
        raise CommandFailed(f"no {name} of version {min_major} or newer found") from None
    found = version(program)
    if found.major < min_major:
        raise CommandFailed(f"{program} is version {found}, older than the server ({min_major})")
    return program, found
