"""Owners and grants survive a restore: every backup keeps the server's roles (pg_dumpall
--globals-only --no-role-passwords, under the manifest's sha256), the restore test creates the missing
ones in its sandbox and restores WITH owners and privileges — so a grant naming a role the backup
does not hold fails the test, naming the role, before a real recovery would."""

import hashlib
import json
import uuid

import pytest
from psycopg import sql

from ops_pipelines.adapters.postgres import connect, with_dbname
from ops_pipelines.adapters.sandbox import sandbox_for
from ops_pipelines.adapters.storage import LocalStorage
from ops_pipelines.core.backups.backup import run_backup
from ops_pipelines.core.backups.catalog import complete_backups, read_manifest
from ops_pipelines.core.backups.restore import run_restore_test
from ops_pipelines_tests.helpers import make_config


@pytest.fixture
def owned_and_granted(erp_db):
    """A table owned by one new role and readable by another."""
    suffix = uuid.uuid4().hex[:8]
    owner, reader = f"ops_test_owner_{suffix}", f"ops_test_reader_{suffix}"
    server = with_dbname(erp_db, "postgres")
    with connect(server, autocommit=True) as conn:
        for role in (owner, reader):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    with connect(erp_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.ledger (id bigint PRIMARY KEY, amount numeric)")
        conn.execute("INSERT INTO public.ledger SELECT n, n * 1.5 FROM generate_series(1, 50) AS n")
        conn.execute(sql.SQL("ALTER TABLE public.ledger OWNER TO {}").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("GRANT SELECT ON public.ledger TO {}").format(sql.Identifier(reader)))
    yield owner, reader
    with connect(erp_db, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}, {}").format(sql.Identifier(owner), sql.Identifier(reader)))
    with connect(server, autocommit=True) as conn:
        for role in (owner, reader):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_a_table_comes_back_with_its_owner_and_grant_in_the_sandbox(erp_db, tmp_path, owned_and_granted):
    owner, reader = owned_and_granted
    config = make_config(tmp_path, {"erp": erp_db})
    db, storage = config.databases[0], LocalStorage(tmp_path)
    run_backup(db, storage)
    entry = complete_backups(storage, "erp")[-1]
    manifest = read_manifest(storage, entry)
    assert manifest.globals_key and entry.globals is not None
    assert f"CREATE ROLE {reader};" in storage.read_bytes(manifest.globals_key).decode()
    seen = {}

    def inspect(dsn: str) -> None:
        with connect(dsn) as conn:
            seen["owner"] = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'ledger'").fetchone()[
                "tableowner"
            ]
            seen["granted"] = conn.execute(
                "SELECT has_table_privilege(%s, 'public.ledger', 'SELECT') AS ok", (reader,)
            ).fetchone()["ok"]

    report = run_restore_test(db, storage, entry, sandbox_for(db), after_restore=inspect)
    assert report.passed and report.owners_checked, report.restore_errors
    assert seen == {"owner": owner, "granted": True}


def test_a_grant_naming_a_role_missing_from_the_backup_fails_the_restore_test(erp_db, tmp_path, owned_and_granted):
    _, reader = owned_and_granted
    config = make_config(tmp_path, {"erp": erp_db})
    db, storage = config.databases[0], LocalStorage(tmp_path)
    run_backup(db, storage)
    entry = complete_backups(storage, "erp")[-1]
    manifest = read_manifest(storage, entry)
    # The roles file as a server without that role would have written it (and its sha256 to match).
    globals_sql = storage.read_bytes(manifest.globals_key).decode()
    without = "\n".join(line for line in globals_sql.splitlines() if reader not in line) + "\n"
    storage.write_bytes(manifest.globals_key, without.encode())
    data = json.loads(storage.read_bytes(entry.manifest.key))
    data["globals_sha256"] = hashlib.sha256(without.encode()).hexdigest()
    storage.write_bytes(entry.manifest.key, json.dumps(data).encode())

    report = run_restore_test(db, storage, entry, sandbox_for(db))
    assert not report.passed
    assert any(f'role "{reader}" does not exist' in e for e in report.restore_errors), report.restore_errors


def test_recover_with_roles_onto_a_server_without_them(erp_db, tmp_path, owned_and_granted, monkeypatch, capsys):
    """A new server (the disaster case): without --with-roles the recovery is refused, untouched; with it
    the backup's missing roles are created (no password) and the table keeps its owner and grant."""
    from ops_pipelines.adapters.cluster import LocalCluster
    from ops_pipelines.cli import main

    owner, reader = owned_and_granted
    path = tmp_path / "config.yaml"
    path.write_text(
        f'backup_store: {{local_dir: {tmp_path / "store"}}}\ndatabases:\n  - name: erp\n    dsn: "{erp_db}"\n'
    )
    monkeypatch.setenv("OPS_PIPELINES_CONFIG", str(path))
    config = make_config(tmp_path / "store", {"erp": erp_db})
    run_backup(config.databases[0], LocalStorage(tmp_path / "store"))
    stamp = complete_backups(LocalStorage(tmp_path / "store"), "erp")[-1].stamp
    elsewhere = LocalCluster.temporary(prefix="ops_test_newserver_")
    try:
        elsewhere.init()
        elsewhere.start()
        args = ["recover", "erp", "--target", "erp", "--target-dsn", elsewhere.dsn(), "--backup", stamp]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "does not exist" in err and "(--with-roles creates the backup's missing roles)" in err
        with connect(elsewhere.dsn()) as conn:
            assert conn.execute("SELECT count(*) AS n FROM pg_database WHERE datname LIKE 'erp%'").fetchone()["n"] == 0
        assert main([*args, "--with-roles"]) == 0
        assert "roles created (no password; set one): " in capsys.readouterr().out
        with connect(elsewhere.dsn("erp")) as conn:
            assert (
                conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'ledger'").fetchone()["tableowner"]
                == owner
            )
            granted = conn.execute("SELECT has_table_privilege(%s, 'public.ledger', 'SELECT') AS ok", (reader,))
            assert granted.fetchone()["ok"]
    finally:
        elsewhere.remove()
