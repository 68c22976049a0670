"""The typed wrappers of the external programs: their parsing on captured output, and the real
programs (pg_dump, pg_restore, the cluster programs) giving what the parsers expect."""

import contextlib
import os

import psycopg
import pytest

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.postgres import connect
from ops_pipelines.adapters.programs import pg_dump, pg_restore
from ops_pipelines.adapters.programs.pg_server import PgServer
from ops_pipelines.adapters.programs.version import Version, parse_version
from ops_pipelines.errors import CommandFailed

# What `pg_restore --list` prints for a small custom-format dump (captured from pg_restore 15).
CAPTURED_LIST = """;
; Archive created at 2026-12-04 21:40:11 UTC
;     dbname: erp
;     TOC Entries: 9
;
; Selected TOC Entries:
;
3363; 2615 2200 SCHEMA - public pg_database_owner
3364; 0 0 COMMENT - SCHEMA public pg_database_owner
215; 1259 16390 TABLE public orders ops
216; 1259 16396 TABLE "Sales" order_lines ops
3357; 0 16390 TABLE DATA public orders ops
3358; 0 16396 TABLE DATA "Sales" order_lines ops
3210; 2606 16395 CONSTRAINT public orders orders_pkey ops
3211; 1259 16400 INDEX "Sales" order_lines_order_id_idx ops
"""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("pg_dump (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)\n", (15, 10)),
        ("postgres (PostgreSQL) 17beta1\n", (17, 0)),
        ("pg_restore (PostgreSQL) 9.6.24\n", (9, 6)),
    ],
)
def test_a_version_line_parses_to_major_and_minor(line, expected):
    version = parse_version(line)
    assert (version.major, version.minor) == expected and version.line == line.strip()


def test_a_line_without_a_postgresql_version_is_a_named_failure():
    with pytest.raises(CommandFailed, match="cannot read a PostgreSQL version from 'bash 5.2'"):
        parse_version("bash 5.2")


def test_the_catalogue_keeps_entries_and_drops_comments():
    entries = pg_restore.parse_catalogue(CAPTURED_LIST)
    assert [e.dump_id for e in entries] == [3363, 3364, 215, 216, 3357, 3358, 3210, 3211]
    data = [e.description for e in entries if e.is_table_data]
    assert data == ["TABLE DATA public orders ops", 'TABLE DATA "Sales" order_lines ops']


def test_the_installed_programs_report_versions_the_parser_reads():
    server = PgServer(commands.pg_bin_dir())
    found = server.version()
    dump = pg_dump.for_server(found.major)
    assert isinstance(found, Version) and found.major >= 13
    assert dump.version.major >= found.major and dump.version.line.startswith("pg_dump (PostgreSQL) ")


def test_a_pg_dump_older_than_the_server_is_refused_with_what_to_install():
    newest = PgServer(commands.pg_bin_dir()).version().major
    with pytest.raises(CommandFailed, match=f"install postgresql-client-{newest + 1}$"):
        pg_dump.for_server(newest + 1)


def test_a_real_dump_lists_through_the_catalogue_parser(erp_db, tmp_path):
    """pg_dump's custom format from an exported snapshot, then pg_restore --list fed on stdin and
    parsed: one TABLE DATA entry per table with rows (the read the `backup_readable` check makes)."""
    connection = commands.tool_connection(erp_db, "ops_pipelines/test")
    program = pg_dump.for_server(PgServer(commands.pg_bin_dir()).version().major)
    archive = tmp_path / "erp.dump"
    with connect(erp_db) as conn:
        conn.commit()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snapshot = conn.execute("SELECT pg_export_snapshot() AS s").fetchone()["s"]
        with pg_dump.dump_custom(program, connection, snapshot=snapshot, lock_wait_timeout_ms=5000) as stream:
            with archive.open("wb") as out:
                while chunk := os.read(stream.stdout_fd, 65536):
                    out.write(chunk)
            returncode = stream.wait()
            assert returncode == 0, stream.failure(returncode)
        tables = conn.execute(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()["n"]
    with pg_restore.catalogue_of_stdin(pg_restore.find(program.bin_dir)) as listing:
        with contextlib.suppress(BrokenPipeError):  # it stops reading once it has the catalogue
            listing.stdin.write(archive.read_bytes())
            listing.stdin.close()
        assert listing.wait(timeout=120) == 0
    entries = pg_restore.parse_catalogue(listing.collected_stdout.decode())
    table_data = [e for e in entries if e.is_table_data]
    assert tables >= 10 and len(table_data) == tables  # pg_dump writes a TABLE DATA entry per table
    assert len(entries) > len(table_data)  # and the schema, tables, keys and indexes beside them
