"""Config loading: every kind of bad input is one line naming the file and the key."""

import re
from pathlib import Path

import pytest

from ops_pipelines.config import CONFIG_ENV_VAR, load_config, load_config_from_env
from ops_pipelines.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"
ENV = {
    "ERP_PROD_DSN": "postgresql://ops:s3cret-pw@db1.internal:5432/erp",
    "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "ALERT_WEBHOOK_URL": "https://hooks.example.com/T000/B000/XXXX",
    "OPS_METRICS_DSN": "host=metrics.internal dbname=ops_metrics",
    "ERP_ARCHIVE_DSN": "host=archive.internal dbname=erp_archive",
    "ERP_REPLICA_DSN": "host=replica.internal dbname=erp",
}
MINIMAL = """\
backup_store: {local_dir: /tmp/backups}
databases:
  - name: erp_prod
    dsn: "host=127.0.0.1 dbname=erp"
"""


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Config reference", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def load_error(write_config, text: str, env=None) -> str:
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env if env is not None else ENV)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    assert message.startswith(f"{path}: "), "errors name the file"
    return message[len(f"{path}: ") :]


def test_the_readme_example_loads_with_every_section(write_config):
    config = load_config(write_config(readme_example()), ENV)
    prod = config.database("erp_prod")
    assert prod.dsn.get_secret_value() == ENV["ERP_PROD_DSN"]
    assert config.backup_store.s3.endpoint_url == "http://127.0.0.1:9000"
    assert prod.archive[0].table == ("public", "orders")
    shipments = prod.archive[0].children[0]
    assert shipments.table == ("public", "shipments") and shipments.fk == ("order_id",)
    assert shipments.children[0].fk == ("order_id", "shipment_no")  # nested, with a composite key
    assert prod.archive[1].purge and prod.archive[0].max_runtime.seconds == 1800
    assert prod.archive[0].older_than.to_pg_interval() == "0 months 31536000.0 seconds"
    assert prod.capacity.volume_capacity == 500 * 10**9
    assert config.retention_for(prod).daily == 14
    manufacturing = config.database("erp_manufacturing")
    assert config.retention_for(manufacturing).daily == 7
    assert manufacturing.restore_test.sandbox == "local_cluster"


def test_defaults_apply_to_every_database_and_own_settings_win(write_config):
    text = MINIMAL.replace("databases:", "defaults:\n  backup: {max_age_hours: 30, compression_level: 5}\ndatabases:")
    text += "    backup: {compression_level: 9}\n  - name: erp_two\n    dsn: host=x\n"
    config = load_config(write_config(text), {})
    first, second = config.databases
    assert (first.backup.max_age_hours, first.backup.compression_level) == (30, 9)
    assert (second.backup.max_age_hours, second.backup.compression_level) == (30, 5)


def test_env_fallback_and_escape(write_config):
    text = MINIMAL.replace('"host=127.0.0.1 dbname=erp"', '"${ERP_DSN:-host=fallback dbname=erp}"')
    text += "    restore_test: {sanity_queries: ['SELECT $$1']}\n"
    config = load_config(write_config(text), {})
    assert config.databases[0].dsn.get_secret_value() == "host=fallback dbname=erp"
    assert config.databases[0].restore_test.sanity_queries == ["SELECT $1"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("backup_store: {local_dir: /tmp/backups}", "backup_store: {local_dir: /tmp/backups, bukket: x}"),
            "backup_store.bukket: unknown key (allowed here: local_dir, s3)",
        ),
        (
            ('    dsn: "host=127.0.0.1 dbname=erp"', '    dsn: "${ERP_MISSING_DSN}"'),
            "databases[0].dsn: environment variable ERP_MISSING_DSN is not set",
        ),
        (
            ("name: erp_prod", "name: erp-prod"),
            'databases[0].name: "erp-prod" is not a valid name: it becomes a Dagster partition key',
        ),
        (
            (
                '    dsn: "host=127.0.0.1 dbname=erp"',
                '    dsn: "host=127.0.0.1 dbname=erp"\n    backup: {max_age_hours: soon}',
            ),
            "databases[0].backup.max_age_hours: Input should be a valid number",
        ),
        (
            (
                '    dsn: "host=127.0.0.1 dbname=erp"',
                '    dsn: "host=127.0.0.1 dbname=erp"\n    restore_test: {max_age: 26}',
            ),
            'databases[0].restore_test.max_age: expected a duration like "365 days" or "26h", got 26',
        ),
        (
            (
                '    dsn: "host=127.0.0.1 dbname=erp"',
                '    dsn: "host=127.0.0.1 dbname=erp"\n    capacity: {volume_capacity: 500 gigs}',
            ),
            'databases[0].capacity.volume_capacity: expected a size like "500GB"',
        ),
        (("backup_store:", "timezone: Saigon\nbackup_store:"), 'timezone: unknown time zone "Saigon"'),
        (
            ("backup_store:", "schedules: {backup: 'daily at 2'}\nbackup_store:"),
            'schedules.backup: expected a cron expression like "0 2 * * *", got "daily at 2"',
        ),
        (("backup_store: {local_dir: /tmp/backups}\n", ""), "backup_store: required key is missing"),
        (
            (
                '    dsn: "host=127.0.0.1 dbname=erp"',
                '    dsn: "host=127.0.0.1 dbname=erp"\n    restore_test: {sandbox: scratch_database}',
            ),
            "databases[0].restore_test: sandbox scratch_database needs scratch_dsn",
        ),
        (
            ("backup_store:", "metrics: {textfile_path: /var/lib/node_exporter/ops.txt}\nbackup_store:"),
            "metrics: textfile_path must end in .prom (node_exporter reads only *.prom files)",
        ),
        (
            ("backup_store:", "alerts: {webhook_url: 'hooks.slack.com/services/T0/B0/secret'}\nbackup_store:"),
            "alerts: webhook_url must be an http:// or https:// URL",
        ),
        (
            ("backup_store:", "alerts: {format: teams}\nbackup_store:"),
            "alerts.format: Input should be 'slack' or 'generic'",
        ),
        (("name: erp_prod", "name: reports"), 'databases[0].name: "reports" is reserved for the reports folder'),
    ],
)
def test_bad_input_names_the_key(write_config, edit, expected):
    old, new = edit
    assert old in MINIMAL
    assert expected in load_error(write_config, MINIMAL.replace(old, new))


def test_malformed_archive_age_names_the_rule(write_config):
    text = (
        MINIMAL
        + "    archive:\n      - {name: old_orders, table: public.orders, age_column: completed_at, older_than: 1y}\n"
    )
    message = load_error(write_config, text)
    assert message.startswith('databases[0].archive[0].older_than: expected a duration like "365 days"')
    assert 'got "1y"' in message


def test_duplicate_database_name(write_config):
    text = MINIMAL + '  - name: erp_prod\n    dsn: "host=other"\n'
    assert load_error(write_config, text) == 'databases[1].name: duplicate database name "erp_prod" (also databases[0])'


def test_duplicate_archive_rule(write_config):
    rule = "      - {name: old, table: orders, age_column: completed_at, older_than: 365 days}\n"
    message = load_error(write_config, MINIMAL + "    archive:\n" + rule + rule)
    assert message.startswith('databases[0].archive[1].name: duplicate archive rule "old"')


def test_duplicate_yaml_key_is_not_silently_dropped(write_config):
    message = load_error(write_config, MINIMAL + "backup_store: {local_dir: /elsewhere}\n")
    assert 'duplicate key "backup_store"' in message


def test_bad_default_is_reported_under_defaults(write_config):
    text = MINIMAL.replace("databases:", "defaults:\n  vacuum: {dead_ratio: 3}\ndatabases:")
    assert load_error(write_config, text).startswith(
        "defaults.vacuum.dead_ratio: Input should be less than or equal to 1"
    )


def test_empty_database_list(write_config):
    assert (
        load_error(write_config, "backup_store: {local_dir: /tmp}\ndatabases: []\n")
        == "databases: list at least one database"
    )


@pytest.mark.parametrize(
    "secret", ["postgresql://ops:hunter2-secret@db/erp?sslmod=require", "host=db password=hunter2-secret dbnme=erp"]
)
def test_passwords_never_appear_in_errors(write_config, secret):
    text = MINIMAL.replace('"host=127.0.0.1 dbname=erp"', '"${ERP_PROD_DSN}"')
    message = load_error(write_config, text, {"ERP_PROD_DSN": secret})
    assert message == "databases[0].dsn: not a valid libpq connection string or URI"
    assert "hunter2" not in message


def test_secret_values_are_masked_in_repr(write_config):
    config = load_config(write_config(readme_example()), ENV)
    assert "s3cret-pw" not in repr(config)
    assert "XXXX" not in repr(config.alerts)


def test_unreadable_file_and_bad_yaml(tmp_path, write_config):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config: No such file"):
        load_config(tmp_path / "nope.yaml", {})
    assert load_error(write_config, "databases: [\n").startswith("line ")
    assert "expected a mapping" in load_error(write_config, "- just a list\n")


def test_without_the_env_var_it_says_how_to_run_the_demo():
    with pytest.raises(ConfigError) as info:
        load_config_from_env({})
    assert CONFIG_ENV_VAR in str(info.value)
    assert "./scripts/demo.sh" in str(info.value)


def test_quoted_identifiers_in_table_names(write_config):
    text = (
        MINIMAL + "    maintenance_window: "
        '{vacuum_full_tables: [\'"Sales Data"."Order ""Lines"""\', Public.Orders, audit_log]}\n'
    )
    tables = load_config(write_config(text), {}).databases[0].maintenance_window.vacuum_full_tables
    assert tables == [("Sales Data", 'Order "Lines"'), ("public", "orders"), ("public", "audit_log")]


# ---------------------------------------------------------------------------- secrets and questionable values

DSN_SECRET = "postgresql://ops:hunter2-secret@db/erp"
WEBHOOK_SECRET = "https://hooks.slack.com/services/T0/B0/tok3n-secret"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a section or a list given as a string: its value is never shown
        (
            f'backup_store: {{local_dir: /tmp}}\ndatabases: ["{DSN_SECRET}"]\n',
            "databases[0]: expected a mapping of keys to values, got a string",
        ),
        (MINIMAL + "metrics: ${OPS_METRICS_DSN}\n", "metrics: expected a mapping of keys to values, got a string"),
        (MINIMAL + f"alerts: {WEBHOOK_SECRET}\n", "alerts: expected a mapping of keys to values, got a string"),
        (f"backup_store: {{local_dir: /tmp}}\ndatabases: {DSN_SECRET}\n", "databases: expected a list, got a string"),
        (
            MINIMAL + f"alerts: {{webhook_url: [{WEBHOOK_SECRET}]}}\n",
            "alerts.webhook_url: Input should be a valid string",
        ),
        # a secret in a key whose value is echoed is masked
        (
            MINIMAL + f"alerts: {{ui_base_url: 5, format: {WEBHOOK_SECRET}}}\n",
            "alerts.format: Input should be 'slack' or 'generic', got 'https://hooks.slack.com/***'",
        ),
        (
            MINIMAL + f"    restore_test: {{bin_dir: '{DSN_SECRET}'}}\n",
            "databases[0].restore_test.bin_dir: expected an absolute path (starting with /), got "
            '"postgresql:/ops:***@db/erp"',
        ),
    ],
)
def test_secret_bearing_mistakes_print_no_secret(write_config, text, expected):
    message = load_error(write_config, text, {**ENV, "OPS_METRICS_DSN": DSN_SECRET})
    assert expected in message
    assert "hunter2" not in message and "tok3n" not in message


def test_echoed_values_mask_uri_passwords(write_config):
    text = MINIMAL + f"    restore_test: {{sandbox: '{DSN_SECRET}'}}\n"
    message = load_error(write_config, text)
    assert "postgresql://ops:***@db/erp" in message and "hunter2" not in message


DB_SETTING = '    dsn: "host=127.0.0.1 dbname=erp"\n    '


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("timeouts: {lock: 0s}", 'databases[0].timeouts.lock: expected a duration longer than zero, got "0s"'),
        ("timeouts: {statement: 0 min}", "databases[0].timeouts.statement: expected a duration longer than zero"),
        ("timeouts: {connect: 0s}", "databases[0].timeouts.connect: expected a duration longer than zero"),
        (
            "timeouts: {statement: 1 year}",
            'databases[0].timeouts.statement: "1 year" has months or years, which have no fixed length here',
        ),
        ("restore_test: {max_age: 1 month}", 'databases[0].restore_test.max_age: "1 month" has months or years'),
        ("restore_test: {max_age: 0 days}", "databases[0].restore_test.max_age: expected a duration longer than zero"),
        ("capacity: {warn_within: 3 months}", 'databases[0].capacity.warn_within: "3 months" has months or years'),
        (
            "capacity: {warn_within: 10 days}",
            "databases[0].capacity: warn_within (10 days) must be at least error_within (30 days)",
        ),
        (
            "vacuum: {xid_age_warn: 1500000000}",
            "databases[0].vacuum: xid_age_warn (1,500,000,000) must be below xid_age_error (1,200,000,000)",
        ),
        (
            "archive: [{name: old, table: orders, age_column: completed_at, older_than: 0 days}]",
            'databases[0].archive[0].older_than: expected a duration longer than zero, got "0 days"',
        ),
        (
            "capacity: {volume_path: data/pg}",
            'databases[0].capacity.volume_path: expected an absolute path (starting with /), got "data/pg"',
        ),
    ],
)
def test_questionable_values_are_refused_with_the_key(write_config, setting, expected):
    text = MINIMAL.replace('    dsn: "host=127.0.0.1 dbname=erp"\n', DB_SETTING + setting + "\n")
    assert expected in load_error(write_config, text)


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        (
            "schedules: {maintenance_window_length: 1 month}",
            'schedules.maintenance_window_length: "1 month" has months',
        ),
        ("alerts: {timeout: 0s}", "alerts.timeout: expected a duration longer than zero"),
        ("reports: {dir: reports}", 'reports.dir: expected an absolute path (starting with /), got "reports"'),
        ("reports: {file_mode: 640}", 'reports.file_mode: expected an octal file mode like "0640", got 640'),
        ("defaults: {timeouts: {lock: 0s}}", "defaults.timeouts.lock: expected a duration longer than zero"),
    ],
)
def test_questionable_top_level_values_are_refused(write_config, top, expected):
    assert expected in load_error(write_config, top + "\n" + MINIMAL)


def test_a_relative_backup_folder_is_refused(write_config):
    message = load_error(write_config, MINIMAL.replace("/tmp/backups", "backups"))
    assert message.endswith('backup_store.local_dir: expected an absolute path (starting with /), got "backups"')


def test_an_encrypted_client_key_password_is_refused_without_echo(write_config):
    message = load_error(write_config, MINIMAL.replace("dbname=erp", "dbname=erp sslpassword=k3y-secret"))
    assert "sslpassword is not supported" in message and "k3y-secret" not in message


def test_report_file_mode(write_config):
    assert load_config(write_config(MINIMAL + 'reports: {file_mode: "0640"}\n'), ENV).reports.file_mode == 0o640
    assert load_config(write_config(MINIMAL), ENV).reports.file_mode == 0o600


def test_without_a_timezone_schedules_run_in_the_machines_zone(write_config, monkeypatch):
    """Not a hard-coded zone: a config that forgets `timezone` gets its 02:00 backup at 02:00 local time."""
    from ops_pipelines.config import load_config, machine_timezone

    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert machine_timezone() == "Europe/Berlin"
    assert load_config(write_config(MINIMAL)).timezone == "Europe/Berlin"
    monkeypatch.setenv("TZ", "Not/AZone")  # an unusable $TZ falls through to the system's zone, else UTC
    assert machine_timezone() != "Not/AZone"
    assert load_config(write_config("timezone: America/Sao_Paulo\n" + MINIMAL)).timezone == "America/Sao_Paulo"
