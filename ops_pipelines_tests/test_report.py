"""The weekly report and the Prometheus textfile, built from a week of real operations: backups
(with an S3 copy), a restore test, vacuum, reindex, archival, capacity samples with imported
history, a failed check, live sessions and schema problems planted in a real ERP database."""

import datetime as dt
import json
import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import dagster as dg
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ops_pipelines.adapters.cluster import LocalCluster
from ops_pipelines.adapters.postgres import connect, with_dbname
from ops_pipelines.adapters.storage import local_storage
from ops_pipelines.config import OpsConfig, parse_config
from ops_pipelines.core.backups.catalog import list_backups, stamp_for
from ops_pipelines.core.backups.recovery_status import recovery_status
from ops_pipelines.core.report.live_reads import read_health
from ops_pipelines.core.report.traffic import daily_traffic
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines.redact import mask_passwords
from ops_pipelines_tests.conftest import create_database, drop_database
from ops_pipelines_tests.helpers import make_config

REPORT = dg.AssetKey("maintenance_report")

DATABASE_SETTINGS = """\
description: ERP of the Hanoi warehouse
capacity: {volume_capacity: 5GB}
vacuum: {xid_age_warn: 1, xid_age_error: 2}
archive:
  - name: completed_orders
    table: public.orders
    age_column: completed_at
    older_than: 365 days
    status_column: status
    status_in: [completed]
    children: [{table: public.order_lines, fk: order_id}]
    destination: {schema: archive}
"""


@dataclass
class Week:
    config: OpsConfig
    defs: dg.Definitions
    instance: dg.DagsterInstance
    erp: str  # DSN
    bucket: str
    s3_endpoint: str
    active_pid: int
    idle_pid: int


@pytest.fixture(scope="module")
def week(pg_server, erp_template, s3_endpoint, tmp_path_factory):
    erp_name, metrics_name = create_database(pg_server, erp_template), create_database(pg_server)
    erp, metrics = with_dbname(pg_server, erp_name), with_dbname(pg_server, metrics_name)
    folder = tmp_path_factory.mktemp("week")
    bucket = f"ops-report-{erp_name[-12:]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    indented = "".join(f"    {line}\n" for line in DATABASE_SETTINGS.splitlines())
    config = parse_config(
        f"""\
timezone: Asia/Ho_Chi_Minh
metrics: {{dsn: "{metrics}", textfile_path: {folder / "textfile" / "ops_pipelines.prom"}}}
reports: {{long_running_after: 1s}}
retention: {{daily: 30}}
backup_store:
  local_dir: {folder}
  s3: {{bucket: {bucket}, endpoint_url: "{s3_endpoint}", region: us-east-1}}
databases:
  - name: erp
    dsn: "{erp}"
{indented}  - name: gone
    dsn: "{with_dbname(pg_server, "ops_test_does_not_exist")}"
""",
        {},
    )
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    plant_schema_problems(erp)

    def run(capability, run_config=None, db="erp"):
        result = capability_job(defs, config, db, capability).execute_in_process(
            partition_key=db, instance=instance, run_config=run_config or {}, raise_on_error=False
        )
        assert result.success, capability
        return result

    history = folder / "grafana.csv"
    start = dt.date.today() - dt.timedelta(days=120)
    history.write_text(
        "date,bytes\n" + "".join(f"{start + dt.timedelta(days=i)},{int(1e9 + i * 15e6)}\n" for i in range(120))
    )
    run("capacity", {"ops": {"capacity_sample": {"config": {"import_csv": str(history)}}}})
    plant_traffic_history(metrics)
    run("backup")
    plant_older_backup(config, days=10)  # retention keeps one backup a day: history needs days
    run("restore_test")
    missing = {"ops": {"restore_test": {"config": {"backup": "20990101T000000Z"}}}}
    assert (
        not capability_job(defs, config, "erp", "restore_test")
        .execute_in_process(partition_key="erp", instance=instance, run_config=missing, raise_on_error=False)
        .success
    )  # the failed run of the week
    with connect(erp, autocommit=True) as conn:
        conn.execute("DELETE FROM auth.login_attempts WHERE id % 2 = 0 AND email NOT LIKE 'intruder%'")
        conn.execute("SELECT pg_stat_force_next_flush()")
    run("vacuum")  # its xid_age check fails (error past 2): the failed check of the week
    run("reindex")
    run("archive", {"ops": {"archive_completed_orders": {"config": {"confirm": True}}}})

    sessions = LiveSessions(erp)
    try:
        sessions.wait_until_older_than(seconds=1.5)  # past reports.long_running_after (1 s), however slow the start
        result = defs.resolve_job_def("maintenance_report_job").execute_in_process(instance=instance)
        assert result.success
        yield Week(config, defs, instance, erp, bucket, s3_endpoint, sessions.active_pid, sessions.idle_pid)
    finally:
        sessions.close()
        drop_database(pg_server, erp_name)
        drop_database(pg_server, metrics_name)


def plant_traffic_history(metrics_dsn: str) -> None:
    """Daily samples 14..1 days ago, as the capacity schedule takes them: 1,000 commits and 10
    rollbacks a day the week before, 1,200 and 12 a day since, one deadlock 3 days ago. Their
    statistics-reset time differs from today's real sample's, so that interval is not counted."""
    now = dt.datetime.now(dt.UTC)
    commits = rollbacks = deadlocks = 0
    with connect(metrics_dsn, autocommit=True) as conn:
        for days_ago in range(14, 0, -1):
            if days_ago < 14:
                commits += 1200 if days_ago <= 6 else 1000
                rollbacks += 12 if days_ago <= 6 else 10
                deadlocks += days_ago == 3
            conn.execute(
                "INSERT INTO ops_metrics.capacity_samples (database, sampled_at, database_bytes, commits, rollbacks,"
                " deadlocks, temp_bytes, stats_reset) VALUES ('erp', %s, 1, %s, %s, %s, %s, '2000-01-01')",
                (now - dt.timedelta(days=days_ago), commits, rollbacks, deadlocks, (14 - days_ago) * 10**6),
            )


def plant_older_backup(config: OpsConfig, days: int) -> None:
    """The newest backup's files again under a stamp `days` earlier, as if taken then."""
    storage = local_storage(config)
    newest = [e for e in list_backups(storage, "erp") if e.complete][-1]
    older = stamp_for(newest.started_at - dt.timedelta(days=days))
    for key in (newest.dump.key, newest.manifest.key):
        storage.write_bytes(key.replace(newest.stamp, older), storage.read_bytes(key))


def plant_schema_problems(dsn: str) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.audit_log (happened_at timestamptz, note text)")  # no primary key
        conn.execute("CREATE INDEX audit_log_at ON public.audit_log (happened_at)")
        conn.execute("CREATE INDEX audit_log_at_again ON public.audit_log (happened_at)")  # duplicate, unused
        conn.execute("CREATE INDEX audit_log_note ON public.audit_log (note)")
        conn.execute("INSERT INTO public.audit_log SELECT now(), 'n' || g FROM generate_series(1, 500) AS g")
        conn.execute("ANALYZE public.audit_log")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SELECT count(*) FROM public.audit_log WHERE note = 'n7'")  # audit_log_note is used
        conn.execute("SELECT pg_stat_force_next_flush()")


class LiveSessions:
    """An ERP session running a long statement and one idle inside an open transaction."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.active = psycopg.connect(dsn, application_name="erp_app", autocommit=True)
        self.idle = psycopg.connect(dsn, application_name="erp_app")
        self.active_pid, self.idle_pid = self.active.info.backend_pid, self.idle.info.backend_pid
        self.idle.execute("SELECT 1 FROM public.orders LIMIT 1")  # opens the transaction, then idles
        self.thread = threading.Thread(target=self._sleep, daemon=True)
        self.thread.start()

    def wait_until_older_than(self, seconds: float, timeout: float = 60) -> None:
        """Poll until the statement has run, and the transaction idled, for longer than `seconds`."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                old_enough = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND"
                    " ((state = 'active' AND query LIKE '%%pg_sleep%%' AND query_start < now() - make_interval(secs "
                    "=> %s))"
                    " OR (state LIKE 'idle in transaction%%' AND xact_start < now() - make_interval(secs => %s)))",
                    ([self.active_pid, self.idle_pid], seconds, seconds),
                ).fetchone()[0]
                if old_enough == 2:
                    return
                time.sleep(0.1)
        raise AssertionError(f"the two live sessions did not pass {seconds} s within {timeout} s")

    def _sleep(self):
        try:
            self.active.execute("SELECT pg_sleep(60) /* nightly stock recount */")
        except psycopg.Error:
            pass  # cancelled by close()

    def close(self):
        self.active.cancel()
        self.thread.join(timeout=10)
        self.active.close()
        self.idle.close()


def report_files(week: Week) -> tuple[str, str]:
    metadata = week.instance.get_latest_materialization_event(REPORT).asset_materialization.metadata
    return Path(metadata["html"].value).read_text(), Path(metadata["markdown"].value).read_text()


def section(markdown: str, database: str) -> str:
    return markdown.split(f"\n## {database}\n", 1)[1].split("\n## ", 1)[0]


def part(text: str, heading: str) -> str:
    return text.split(f"\n### {heading}\n", 1)[1].split("\n### ", 1)[0]


# ---------------------------------------------------------------------------- the report


def test_recovery_section_has_the_backup_restore_and_failed_check_figures(week):
    _, markdown = report_files(week)
    erp = section(markdown, "erp")
    status = recovery_status(local_storage(week.config), "erp", dt.datetime.now(dt.UTC))
    verified = status.verified
    recovery = part(erp, "Recovery")
    assert "ERP of the Hanoi warehouse" in erp
    stamp_local = status.newest_backup_at.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%Y-%m-%d %H:%M")
    assert f"Newest backup: {stamp_local}" in recovery
    assert (
        "2 backups in the last 30 days" in recovery
        and "![erp: backup sizes over 30 days](backup_trend_erp.png)" in recovery
    )
    from ops_pipelines.units import format_bytes

    assert format_bytes(status.newest_backup_bytes) in recovery
    assert f"Newest backup proven restorable: {verified.backup}" in recovery
    assert f"restored in {verified.restore_seconds:.1f} s" in recovery
    assert re.search(rf"\| {verified.backup} \| passed \| {verified.restore_seconds:.1f} s \|", recovery)
    now_failing, this_week = recovery.split("failing now:")[1].split("this week:", 1)
    failed = re.findall(r"\| vacuum_analyze xid_age \| error \| (.+?) \|", this_week)
    assert len(failed) == 1 and "past 2" in failed[0]
    # Every check failing now, warnings too, is listed, and the summary derives from them: never
    # "nothing needs attention" above a failed check.
    assert re.findall(r"\| (\w+ \w+) \| (error|warning) \|", now_failing) == [
        ("capacity_forecast capacity_headroom", "warning"),
        ("vacuum_analyze xid_age", "error"),
    ]
    summary_row = next(line for line in markdown.split("## Summary")[1].splitlines() if line.startswith("| [erp]"))
    assert "failing (error): vacuum_analyze:xid_age; failing (warning): capacity_forecast:capacity_headroom" in (
        summary_row
    )
    assert "Nothing needs attention" not in erp
    failed_run = re.findall(r"\| restore_test \| (.+?) \|", recovery.split("1 failed run this week:")[1])
    assert failed_run == [
        "ops_pipelines.errors.OpsError: no backup 20990101T000000Z of erp in "
        + str(week.config.backup_store.local_dir / "erp")
    ]
    # xid_age and the restore_recent of the backup run before the restore test; the headroom warning
    assert "| 3 (1 warning) | 3 |" in markdown.split("## Summary")[1].split("\n## ")[0]


def test_maintenance_section_lists_the_weeks_actions_with_figures(week):
    _, markdown = report_files(week)
    maintenance = part(section(markdown, "erp"), "Maintenance this week")
    vacuum = week.instance.get_latest_materialization_event(
        dg.AssetKey("vacuum_analyze")
    ).asset_materialization.metadata
    archive = week.instance.get_latest_materialization_event(
        dg.AssetKey("archive_completed_orders")
    ).asset_materialization.metadata
    assert f"tables vacuumed: {vacuum['tables_vacuumed'].value:,}" in maintenance
    assert f"dead tuples removed: {vacuum['dead_tuples_removed'].value:,}" in maintenance
    assert vacuum["dead_tuples_removed"].value > 0
    assert "| reindex |" in maintenance and "indexes rebuilt:" in maintenance
    assert archive["rows_moved"].value > 0 and f"rows moved: {archive['rows_moved'].value:,}" in maintenance
    actions = [line.split(" | ")[1] for line in maintenance.splitlines() if line.startswith("| 20")]
    assert actions == ["vacuum_analyze", "reindex", "archive_completed_orders"]  # oldest first


def test_capacity_verdict_metadata_report_and_gauge_agree(week):
    """One answer everywhere: the forecast's metadata, the capacity_headroom check, the report and the
    Prometheus gauge state the same days, from the same (earlier) model, and name that model."""
    from ops_pipelines.history import check_history
    from ops_pipelines.records.capacity import ForecastFigures, Headroom

    html, markdown = report_files(week)
    capacity = part(section(markdown, "erp"), "Capacity")
    metadata = week.instance.get_latest_materialization_event(
        dg.AssetKey("capacity_forecast")
    ).asset_materialization.metadata
    figures = ForecastFigures.from_metadata(metadata)
    assert figures.enough_history and figures.days_to_warning is not None and figures.days_to_full is not None
    assert set(figures.crossings) == {"robust linear trend", "damped Holt trend"}  # both models, named
    assert figures.days_to_full == min(f for _, f in figures.crossings.values() if f is not None)
    assert figures.full_model in figures.crossings and figures.model in figures.crossings

    check_key = dg.AssetCheckKey(dg.AssetKey("capacity_forecast"), "capacity_headroom")
    evaluation = check_history(week.instance, check_key, "erp", limit=1)[0].event.dagster_event.event_specific_data
    headroom = Headroom.from_metadata(evaluation.metadata)
    assert (headroom.days_to_warning, headroom.days_to_full) == (figures.days_to_warning, figures.days_to_full)
    assert figures.crossing_text("warning") in evaluation.description  # the same words, the model named

    summary = metadata["summary"].value
    assert figures.crossing_text("warning") in summary and figures.crossing_text("full") in summary
    assert "robust linear trend" in summary and "damped Holt trend" in summary

    assert f"warning ratio reached: {figures.crossing_text('warning')}" in capacity
    assert f"volume full: {figures.crossing_text('full')}" in capacity
    assert f"{'passed' if evaluation.passed else 'FAILED'}: {evaluation.description}" in capacity
    assert "![erp: capacity forecast](capacity_erp.png)" in capacity
    assert 'alt="erp: capacity forecast"' in html

    gauge = textfile_values(week)[("ops_pipelines_capacity_days_to_full", "erp")]
    assert gauge == figures.days_to_full


def test_traffic_section_has_daily_figures_and_the_week_against_the_one_before(week):
    _, markdown = report_files(week)
    traffic = part(section(markdown, "erp"), "Traffic and errors")
    # this week: 6 daily intervals (today's runs into a statistics reset); the week before: 7
    assert (
        "Last 7 days against the 7 before: 7,272 transactions (+2.9%), rollback rate 0.99% (was 0.99%), "
        "1 deadlock (was 0), 6.0 MB of temporary files (was 7.0 MB)."
    ) in traffic
    days = [line for line in traffic.splitlines() if re.match(r"\| \d{4}-\d\d-\d\d \|", line)]
    assert len(days) == 13 and days[-1].startswith(
        f"| {(dt.datetime.now(dt.timezone(dt.timedelta(hours=7))) - dt.timedelta(days=1)).date()} |"
    )
    assert "| 1,212 | 12 (0.99%) | 0 | 1.0 MB |" in days[-1]


def test_performance_section_reads_the_live_database(week):
    _, markdown = report_files(week)
    performance = part(section(markdown, "erp"), "Performance")
    with connect(week.erp) as conn:
        max_connections = conn.execute("SHOW max_connections").fetchone()["max_connections"]
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()
    assert re.search(r"Cache hit ratio: \d+\.\d%", performance)
    assert f"of max_connections {max_connections}" in performance
    if not installed:
        assert "pg_stat_statements is not installed in this database" in performance
    rows = {line.split(" | ")[0].strip("| "): line for line in performance.splitlines() if line.startswith("| ")}
    assert "active" in rows[str(week.active_pid)] and "nightly stock recount" in rows[str(week.active_pid)]
    assert "idle in transaction" in rows[str(week.idle_pid)] and "erp_app" in rows[str(week.idle_pid)]


def test_schema_health_finds_unused_duplicate_indexes_and_tables_without_key(week):
    _, markdown = report_files(week)
    schema = part(section(markdown, "erp"), "Schema health")
    assert "| public.orders |" in schema.split("Largest tables:")[1]
    written = schema.split("Most written tables")[1].split("\n\n", 2)[1]
    assert re.search(r"\| public\.audit_log \| 500 \| 0 \| – \| 0 \| 500 \|", written)
    unused = schema.split("never scanned")[1].split("\n\n", 2)[1]
    assert "public.audit_log_at_again" in unused and "public.audit_log_at " in unused
    assert "public.audit_log_note" not in unused  # scanned once
    assert "orders_pkey" not in unused  # backs a constraint
    assert "| public.audit_log | public.audit_log_at, public.audit_log_at_again |" in schema
    assert "| public.audit_log | 500 |" in schema.split("without a primary key")[1]


def test_security_section_lists_accounts_over_the_threshold(week):
    _, markdown = report_files(week)
    security = part(section(markdown, "erp"), "Security")
    assert "3 accounts over the failed-login threshold in the last 7 days" in security
    for n in range(3):
        assert re.search(rf"\| intruder{n}@example.com \| 15 \| 1 \| \d{{4}}-\d\d-\d\d \d\d:\d\d \|", security)
    assert "user1@example.com" not in security


def test_an_unreachable_database_gets_a_sentence_not_a_failed_report(week):
    _, markdown = report_files(week)
    gone = section(markdown, "gone")
    assert "No complete backup exists." in gone
    assert "Not read: cannot connect to" in gone and "ops_test_does_not_exist" in gone
    summary = markdown.split("## Summary")[1].split("\n## ")[0]
    assert (
        "| [gone](#db-gone) | no complete backup; no backup ever proven restorable; "
        "no off-site backup ever proven restorable; database unreachable |"
    ) in summary  # the week's config has S3: the off-site drill counts too
    metadata = week.instance.get_latest_materialization_event(REPORT).asset_materialization.metadata
    assert metadata["unreachable"].value == 1 and metadata["databases"].value == 2
    assert "## erp" in metadata["report"].value


def test_the_report_is_reachable_from_the_ui_with_its_charts(week):
    """The asset's Markdown view holds the whole report with its charts (data URIs: nothing for the
    UI to fetch), and, with S3, `open_report` is a presigned link a browser opens without credentials."""
    metadata = week.instance.get_latest_materialization_event(REPORT).asset_materialization.metadata
    assert list(metadata)[0] == "report"  # the UI shows it first
    shown = metadata["report"].value
    assert shown.count("](data:image/png;base64,") == 2 and "see the HTML report" not in shown
    link = metadata["open_report"].value
    assert link.startswith(week.s3_endpoint) and "X-Amz-Signature=" in link and "X-Amz-Expires=604800" in link
    with urllib.request.urlopen(link, timeout=30) as response:  # no credentials: the signature is the key
        assert response.headers["Content-Type"] == "text/html"
        assert response.read().decode() == Path(metadata["html"].value).read_text()


def test_html_is_self_contained_and_the_files_are_also_in_s3(week):
    html, markdown = report_files(week)
    assert (
        re.findall(r'<img src="([^"]{0,22})', html) == ["data:image/png;base64,"] * 2
    )  # erp: trend + forecast; gone: none
    assert "<script" not in html and "http://" not in html.replace("http://dagster", "") and "https://" not in html
    s3 = boto3.client("s3", endpoint_url=week.s3_endpoint, region_name="us-east-1")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=week.bucket, Prefix="reports/")["Contents"]}
    day = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).strftime("%Y-%m-%d")
    assert {
        f"reports/maintenance_report_{day}.html",
        f"reports/maintenance_report_{day}.md",
        "reports/capacity_erp.png",
        "reports/backup_trend_erp.png",
    } <= keys
    stored = s3.get_object(Bucket=week.bucket, Key=f"reports/maintenance_report_{day}.md")["Body"].read().decode()
    assert stored == markdown


def test_daily_traffic_leaves_out_an_interval_across_a_statistics_reset():
    start = dt.datetime(2026, 11, 1, 18, 30, tzinfo=dt.UTC)  # 01:30 the next day in Ho Chi Minh City
    reset = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)

    def sample(day, commits, stats_reset=None):
        return {
            "sampled_at": start + dt.timedelta(days=day),
            "commits": commits,
            "rollbacks": commits // 100,
            "deadlocks": 0,
            "temp_bytes": 0,
            "stats_reset": stats_reset,
        }

    rows = [sample(0, 1000), sample(1, 3000), sample(2, 500, reset), sample(3, 2500, reset), sample(4, 2400, reset)]
    days = daily_traffic(rows, "Asia/Ho_Chi_Minh")
    # day 1: +2000 (+20 rollbacks); day 2: reset, left out; day 3: +2000; day 4: counters went down, left out
    assert [(d.day.isoformat(), d.transactions, d.rollbacks) for d in days] == [
        ("2026-11-03", 2020, 20),
        ("2026-11-05", 2020, 20),
    ]


def test_statement_texts_are_masked():
    assert (
        mask_passwords("ALTER ROLE erp PASSWORD 'it''s secret' VALID UNTIL 'infinity'")
        == "ALTER ROLE erp PASSWORD '***' VALID UNTIL 'infinity'"
    )
    assert mask_passwords("create user x with encrypted password 'p'") == "create user x with encrypted password '***'"


@pytest.mark.slow
def test_top_statements_come_from_pg_stat_statements_when_installed(tmp_path):
    cluster = LocalCluster.temporary(
        prefix="ops_test_pgss_", settings={"shared_preload_libraries": "pg_stat_statements"}
    )
    try:
        cluster.init()
        cluster.start()
        with connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("CREATE TABLE t (id int)")
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'hunter2'")
            for _ in range(5):
                conn.execute("SELECT pg_sleep(0.05), count(*) FROM t")
        config = make_config(tmp_path, {"x": cluster.dsn()})
        health = read_health(config.databases[0], config.reports, dt.datetime.now(dt.UTC))
        performance = health.performance
        assert performance.statements_note is None
        slowest = performance.top_by_mean[0]
        assert "pg_sleep" in slowest["query"] and slowest["calls"] == 5 and float(slowest["mean_ms"]) >= 50
        assert performance.top_by_total[0]["query"] == slowest["query"]
        texts = " ".join(r["query"] for r in performance.top_by_mean + performance.top_by_total)
        assert "hunter2" not in texts
        assert health.security.note.startswith("security review skipped: this database has no auth.login_attempts")
    finally:
        cluster.remove()


def test_an_unwritable_reports_folder_fails_the_run_in_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    config = make_config(
        tmp_path,
        {"erp": "host=127.0.0.1 port=1 dbname=erp connect_timeout=1"},
        top=f"reports: {{dir: {tmp_path / 'file' / 'reports'}}}",
    )
    result = (
        build_definitions(config)
        .resolve_job_def("maintenance_report_job")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    )
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert (
        error.message.strip()
        == f"ops_pipelines.errors.OpsError: cannot write the report into {tmp_path / 'file' / 'reports'}: Not a "
        "directory"
    )


# ---------------------------------------------------------------------------- in a browser


def test_report_opens_in_headless_chromium_with_every_image_and_no_error(week, tmp_path):
    from ops_pipelines_tests.browser import find_chromium, load_page

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    metadata = week.instance.get_latest_materialization_event(REPORT).asset_materialization.metadata
    page = load_page(chromium, Path(metadata["html"].value), tmp_path)
    assert page.images == 2 and page.broken_images == []
    assert page.console_errors == [] and page.exceptions == []
    assert page.requests_outside_the_file == []
    assert page.title.startswith("Maintenance report")


# ---------------------------------------------------------------------------- Prometheus


def textfile_values(week, cursor=None) -> dict:
    """One tick of the textfile sensor, and the gauges it wrote: (name, database[, severity]) -> value."""
    sensor = week.defs.resolve_sensor_def("metrics_textfile_sensor")
    with dg.build_sensor_context(instance=week.instance, definitions=week.defs, cursor=cursor) as context:
        sensor.evaluate_tick(context)
    families = {f.name: f for f in text_string_to_metric_families(week.config.metrics.textfile_path.read_text())}
    assert all(f.type == "gauge" for f in families.values())
    value = {
        (s.name, s.labels.get("database"), s.labels.get("severity")): s.value
        for f in families.values()
        for s in f.samples
    }
    return {(k[0], k[1]) if k[2] is None else k: v for k, v in value.items()}


def test_textfile_holds_the_gauges_and_parses(week):
    path = week.config.metrics.textfile_path
    sensor = week.defs.resolve_sensor_def("metrics_textfile_sensor")
    with dg.build_sensor_context(instance=week.instance, definitions=week.defs) as context:
        result = sensor.evaluate_tick(context)
    assert "wrote the gauges of 2 databases" in result.skip_message
    value = textfile_values(week, result.cursor)

    status = recovery_status(local_storage(week.config), "erp", dt.datetime.now(dt.UTC))
    assert value["ops_pipelines_backup_last_timestamp_seconds", "erp"] == status.newest_backup_at.timestamp()
    assert value["ops_pipelines_backup_last_bytes", "erp"] == status.newest_backup_bytes
    assert value["ops_pipelines_restore_verified_last_timestamp_seconds", "erp"] == pytest.approx(
        status.verified.finished_at.timestamp(), abs=0.01
    )
    assert value["ops_pipelines_restore_last_duration_seconds", "erp"] == pytest.approx(
        status.verified.restore_seconds, abs=0.01
    )
    assert value["ops_pipelines_check_failures", "erp", "error"] == 1  # xid_age
    assert value["ops_pipelines_check_failures", "erp", "warning"] == 1  # capacity_headroom: warning ratio in 47 days
    forecast = week.instance.get_latest_materialization_event(
        dg.AssetKey("capacity_forecast")
    ).asset_materialization.metadata
    assert value["ops_pipelines_capacity_days_to_full", "erp"] == forecast["days_to_full"].value  # the earlier model's
    # A database never backed up reads 0, so `time() - x > max_age` alerts for it as well.
    assert value["ops_pipelines_backup_last_timestamp_seconds", "gone"] == 0
    assert ("ops_pipelines_backup_last_bytes", "gone") not in value
    assert value["ops_pipelines_textfile_generated_timestamp_seconds", None] == pytest.approx(time.time(), abs=60)

    with dg.build_sensor_context(instance=week.instance, definitions=week.defs, cursor=result.cursor) as context:
        again = sensor.evaluate_tick(context)
    assert again.skip_message.startswith("no run finished since")
    capability_job(week.defs, week.config, "erp", "vacuum").execute_in_process(
        partition_key="erp", instance=week.instance
    )
    with dg.build_sensor_context(instance=week.instance, definitions=week.defs, cursor=again.cursor) as context:
        after_run = sensor.evaluate_tick(context)
    assert after_run.skip_message.startswith("wrote the gauges")
    assert json.loads(after_run.cursor)["newest_run"] != json.loads(again.cursor)["newest_run"]
    assert [p.name for p in path.parent.iterdir()] == ["ops_pipelines.prom"]  # no temporary file left


def test_reports_and_charts_are_private_and_the_textfile_readable_by_node_exporter(week):
    metadata = week.instance.get_latest_materialization_event(REPORT).asset_materialization.metadata
    folder = Path(metadata["html"].value).parent
    written = [p for p in folder.iterdir() if p.suffix in {".html", ".md", ".png"}]
    assert len(written) >= 4  # html, md, backup trend, capacity chart
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o600)}
    textfile = next(week.config.metrics.textfile_path.parent.glob("*.prom"))
    assert textfile.stat().st_mode & 0o777 == 0o644  # gauges only; node_exporter runs as its own user
