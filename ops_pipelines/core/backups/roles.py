"""The roles a dump's owners and grants name, brought back from the backup's globals file
(`pg_dumpall --globals-only --no-role-passwords`, saved beside every dump).

Only what is missing is created, never an existing role altered: a role that exists keeps its
password, attributes and memberships. Created roles have no password (none was saved). Tablespaces
are left out: their directories belong to the backed-up server.
"""

import re
from dataclasses import dataclass, field

import psycopg

from ops_pipelines.adapters.postgres import config_sql, connect, first_line

_ROLE_STATEMENT = re.compile(
    r'^(CREATE ROLE|ALTER ROLE|COMMENT ON ROLE|SECURITY LABEL FOR \S+ ON ROLE) ("(?:[^"]|"")+"|[^\s;]+)'
)


@dataclass
class RolesApplied:
    created: list[str] = field(default_factory=list)
    memberships: int = 0
    errors: list[str] = field(default_factory=list)


def apply_missing_roles(dsn: str, globals_sql: str) -> RolesApplied:
    """Run the globals file's role statements for roles `dsn`'s server lacks, then its memberships."""
    done = RolesApplied()
    with connect(dsn, autocommit=True, statement_timeout="5 min", purpose="roles") as conn:
        existing = {r["rolname"] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
        new: set[str] = set()
        for statement in _statements(globals_sql):
            role = _ROLE_STATEMENT.match(statement)
            name = _unquote(role.group(2)) if role else ""
            if role:
                if role.group(1) == "CREATE ROLE":
                    if name in existing:
                        continue
                    new.add(name)
                elif name not in new:
                    continue  # never alter a role that was there before
            elif statement.startswith("GRANT "):
                done.memberships += 1
            else:
                continue  # SET, tablespaces and anything else: not ours to replay
            try:
                conn.execute(config_sql(statement))  # pg_dumpall's own output, sha256-checked
            except psycopg.Error as exc:
                done.errors.append(f"{statement[:80]}: {first_line(exc)}")
                continue
            if role and role.group(1) == "CREATE ROLE":
                done.created.append(name)
    return done


def _statements(text: str) -> list[str]:
    """pg_dumpall writes one statement per line; comments and blank lines are skipped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("--")]


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name
