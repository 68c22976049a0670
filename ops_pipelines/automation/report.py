"""`maintenance_report`: what a DBA reads on Friday, one HTML file (self-contained) and its
Markdown twin for every configured database, kept in the reports folder and in S3 when configured.

It reads, never writes, the databases: the backup store (newest backup, 30-day sizes, newest
proven restore), Dagster's history of the last 7 days (restore tests, failed checks, vacuum,
reindex and archival runs, the capacity forecast) and each database live (performance, schema
health, security review). A database that cannot be reached gets a sentence, not a failed report.
"""

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage

import dagster as dg

from ops_pipelines.adapters.mail import MailUndelivered, send
from ops_pipelines.adapters.notify import SUBJECT_PREFIX
from ops_pipelines.adapters.storage import local_storage, offsite_storage
from ops_pipelines.config import REPORTS_FOLDER, DatabaseConfig, OpsConfig
from ops_pipelines.core.backups.catalog import stamp_time
from ops_pipelines.core.backups.proof import store_proof
from ops_pipelines.core.backups.recovery_status import recovery_status
from ops_pipelines.core.report.live_reads import read_health
from ops_pipelines.core.report.model import (
    CapacityView,
    DatabaseReport,
    FailedCheck,
    FailedRun,
    FailingCheckNow,
    HealthEpisode,
    MaintenanceAction,
    OffsiteDrill,
    Report,
    RestoreTestRun,
)
from ops_pipelines.core.report.render import Image, backup_trend_chart, render_html, render_markdown, report_blocks
from ops_pipelines.core.report.traffic import read_traffic
from ops_pipelines.errors import OpsError
from ops_pipelines.files import atomic_write_bytes
from ops_pipelines.history import (
    PARTITION_TAG,
    check_evaluation,
    check_history,
    checks_with_partitions,
    failing_checks,
    latest_materialization,
    materialization_metadata,
    run_failure,
)
from ops_pipelines.localtime import local_day, local_time
from ops_pipelines.records.capacity import ForecastFigures, SampleFigures
from ops_pipelines.records.restore import RestoreTestRecord
from ops_pipelines.units import format_bytes

REPORT_KEY = dg.AssetKey("maintenance_report")
OFFSITE_DRILL = dg.AssetKey("offsite_restore_test")
HEALTH_KEY = dg.AssetKey("health")
HISTORY_LIMIT = 200  # events per asset or check in a week: more than any schedule makes
HEALTH_HISTORY_LIMIT = 500  # a health check records hourly and on every change: 168+ a week
UI_CHART_BYTES = 2_000_000  # charts inlined into the UI's Markdown view up to this total size
LINK_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live, and the report's own life


def build(config: OpsConfig, asset_graph, maintenance: list[str]) -> dg.Definitions:
    """`maintenance`: the assets whose runs count as maintenance done (from the registry)."""
    present = set(asset_graph.get_all_asset_keys())
    checks = checks_with_partitions(asset_graph)
    # Lineage: the report reads these assets' history.
    read_from = {
        dg.AssetKey(name)
        for name in ("backup", "restore_test", "offsite_restore_test", "capacity_forecast", *maintenance)
    }
    deps = sorted(read_from & present, key=str)

    mailed = bool(config.reports.email_to and config.email)
    delivery = (
        [
            dg.AssetCheckSpec(
                "report_delivered",
                asset=REPORT_KEY,
                description=f"The report was mailed to {len(config.reports.email_to)} recipients "
                "(reports.email_to); a failure warns, the files stay.",
            )
        ]
        if mailed
        else []
    )

    @dg.asset(
        key=REPORT_KEY,
        deps=deps,
        group_name=REPORTS_FOLDER,
        kinds={"html", "markdown"},
        check_specs=delivery,
        description=(
            "Weekly maintenance report of every database: recovery (backups, restore tests, failed checks), "
            "maintenance done, capacity forecast, performance, schema health and the failed-login review. "
            f"HTML and Markdown under {config.reports_dir}" + (" and in S3." if config.backup_store.s3 else ".")
        ),
    )
    def maintenance_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        now = dt.datetime.now(dt.UTC)
        week_start = now - dt.timedelta(days=7)
        sections = []
        failing = failing_checks(context.instance, sorted(checks, key=lambda k: k.to_user_string()))
        for db in config.databases:
            # health checks have their own section (failures as stretches of time), not the failed-check list
            of_database = [key for key, databases in checks.items() if db.name in databases]
            section = database_report(
                context.instance,
                config,
                db,
                [key for key in of_database if key.asset_key != HEALTH_KEY],
                [key for key in of_database if key.asset_key == HEALTH_KEY],
                maintenance,
                present,
                now,
                week_start,
            )
            section.failing_now = [
                FailingCheckNow(
                    f.key.asset_key.to_user_string(), f.key.name, f.severity, f.evaluation.description or ""
                )
                for f in failing.get(db.name, [])
            ]
            if section.unreachable:
                context.log.warning(f"{db.name}: {section.unreachable}")
            sections.append(section)
        report = Report(now, week_start, config.timezone, sections, config.alerts.ui_base_url)
        blocks = report_blocks(report)
        written = write_report(config, report, blocks)
        context.log.info(f"report written: {', '.join(written.files)}")
        # The whole report in the UI's Markdown view, charts included while they stay small (a fleet's
        # hundreds of charts would make every load of this asset's page slow: then the HTML has them).
        inline = written.images if sum(map(len, written.images.values())) <= UI_CHART_BYTES else {}
        markdown = render_markdown(blocks, inline=inline)
        links = {}
        if written.link:  # S3: a link the DBA's browser opens, valid for a week (the report's life)
            links["open_report"] = dg.MetadataValue.url(written.link)
        delivered = []
        if mailed:  # after the files are written: a failed delivery loses nothing
            delivered.append(mail_report(config, report, blocks, written, context.log))
        return dg.MaterializeResult(
            check_results=delivered,
            metadata={
                "report": dg.MetadataValue.md(markdown),
                **links,
                "html": dg.MetadataValue.path(written.files[0]),
                "markdown": dg.MetadataValue.path(written.files[1]),
                **({"s3": dg.MetadataValue.text(written.files[2])} if len(written.files) > 2 else {}),
                "databases": dg.MetadataValue.int(len(sections)),
                "needing_attention": dg.MetadataValue.int(sum(1 for s in sections if s.attention(now))),
                "failed_checks": dg.MetadataValue.int(sum(len(s.failed_checks) for s in sections)),
                "failed_runs": dg.MetadataValue.int(sum(len(s.failed_runs) for s in sections)),
                "maintenance_actions": dg.MetadataValue.int(sum(len(s.maintenance) for s in sections)),
                "unreachable": dg.MetadataValue.int(sum(1 for s in sections if s.unreachable)),
            },
        )

    return dg.Definitions(assets=[maintenance_report])


def mail_report(config: OpsConfig, report: Report, blocks: list, written: "WrittenReport", log) -> dg.AssetCheckResult:
    """The report to reports.email_to: the HTML with its charts as inline (cid:) images, and the
    Markdown twin as the text part."""
    assert config.email is not None
    day = local_day(report.generated_at, report.timezone)
    attention = sum(1 for s in report.databases if s.attention(report.generated_at))
    message = EmailMessage()
    message["Subject"] = (
        f"{SUBJECT_PREFIX} Maintenance report {day}: {len(report.databases)} databases, {attention} need attention"
    )
    message["To"] = ", ".join(config.reports.email_to)
    message.set_content(render_markdown(blocks))
    used = [b.name for b in blocks if isinstance(b, Image) and b.name in written.images]
    message.add_alternative(
        render_html(blocks, written.images, f"Maintenance report {day}", image_src=lambda name, _: f"cid:{name}"),
        subtype="html",
    )
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None  # added just above
    for name in dict.fromkeys(used):
        html_part.add_related(written.images[name], maintype="image", subtype="png", cid=f"<{name}>", filename=name)
    try:
        send(config.email, message)
    except MailUndelivered as exc:
        log.warning(f"the report was not mailed: {exc}")
        return dg.AssetCheckResult(
            check_name="report_delivered",
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"not mailed (the files are written): {exc}",
        )
    log.info(f"report mailed to {', '.join(config.reports.email_to)}")
    return dg.AssetCheckResult(
        check_name="report_delivered",
        passed=True,
        description=f"mailed to {len(config.reports.email_to)} recipients with {len(set(used))} charts",
        metadata={"recipients": len(config.reports.email_to), "charts": len(set(used))},
    )


def database_report(
    instance: dg.DagsterInstance,
    config: OpsConfig,
    db: DatabaseConfig,
    check_keys: list[dg.AssetCheckKey],
    health_checks: list[dg.AssetCheckKey],
    maintenance: list[str],
    present: set[dg.AssetKey],
    now: dt.datetime,
    week_start: dt.datetime,
) -> DatabaseReport:
    """`check_keys`: the database's checks for the failed-check list; `health_checks`: the health
    probe's, reported as stretches of failure instead (the probe records a failure hourly)."""
    health, unreachable = None, None
    try:
        health = read_health(db, config.reports, now)
    except OpsError as exc:
        unreachable = str(exc)
    maintenance_keys = [dg.AssetKey(n) for n in maintenance]
    return DatabaseReport(
        name=db.name,
        description=db.description,
        max_backup_age=dt.timedelta(hours=db.backup.max_age_hours),
        max_restore_age=db.restore_test.max_age.to_timedelta(),
        recovery=recovery_status(local_storage(config), db.name, now, trend_days=30),
        restore_tests=[
            RestoreTestRun(_at(r), test.backup or "?", test.passed, test.restore_seconds, r.run_id)
            for r in _week(instance, dg.AssetKey("restore_test"), db.name, week_start)
            for test in [RestoreTestRecord.from_metadata(materialization_metadata(r))]
        ],
        failed_checks=failed_checks(instance, check_keys, db.name, week_start),
        failing_now=[],  # filled by the caller, from one read of every check's status for the fleet
        failed_runs=failed_runs(instance, db, week_start, present),
        maintenance=sorted(
            (
                MaintenanceAction(
                    _at(r), key.path[-1], _figures(r.asset_materialization.metadata, config.timezone), r.run_id
                )
                for key in maintenance_keys
                if key in present
                for r in _week(instance, key, db.name, week_start)
            ),
            key=lambda action: action.at,
        ),
        capacity=capacity_view(instance, config, db),
        traffic=read_traffic(
            config.metrics.dsn.get_secret_value(), db.name, now - dt.timedelta(days=15), config.timezone
        )
        if config.metrics.dsn
        else None,
        health=health,
        unreachable=unreachable,
        max_offsite_age=db.restore_test.offsite_max_age.to_timedelta() if config.backup_store.s3 else None,
        offsite_drill=offsite_drill(instance, config, db.name) if config.backup_store.s3 else None,
        health_episodes=health_episodes(instance, health_checks, db.name, week_start) if health_checks else None,
    )


def health_episodes(
    instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey], database: str, since: dt.datetime
) -> list[HealthEpisode]:
    """Each health check's failures this week as stretches: from the first failing result after a
    pass (or the week's start) to the next passing one."""
    found = []
    for key in keys:
        records = [r for r in check_history(instance, key, database, HEALTH_HISTORY_LIMIT) if check_evaluation(r)]
        start, worst, description = None, "warning", ""
        for record in reversed(records):  # oldest first
            evaluation = check_evaluation(record)
            assert evaluation is not None
            at = dt.datetime.fromtimestamp(record.create_timestamp, dt.UTC)
            if not evaluation.passed:
                if start is None:
                    start, worst = at, "warning"
                if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                    worst = "error"
                description = evaluation.description or ""
            elif start is not None:
                if at >= since:
                    found.append(HealthEpisode(key.name, worst, max(start, since), at, description))
                start = None
        if start is not None:
            found.append(HealthEpisode(key.name, worst, max(start, since), None, description))
    return sorted(found, key=lambda e: e.started)


def offsite_drill(instance: dg.DagsterInstance, config: OpsConfig, database: str) -> OffsiteDrill | None:
    """The newest off-site backup standing proven in S3 (core/backups/proof.py: a later failed drill of it, or
    its dump gone, withdraws it), with the run that proved it when the event log still holds it."""
    offsite = offsite_storage(config)
    proof = store_proof(offsite, database) if offsite is not None else None
    if proof is None:
        return None
    record = latest_materialization(instance, OFFSITE_DRILL, database)
    run_id = (
        record.run_id
        if record is not None
        and RestoreTestRecord.from_metadata(materialization_metadata(record)).backup == proof.backup
        else None
    )
    return OffsiteDrill(
        proof.finished_at or stamp_time(proof.backup), proof.backup, proof.restore_seconds, run_id or ""
    )


def failed_checks(
    instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey], database: str, since: dt.datetime
) -> list[FailedCheck]:
    found = []
    for key in check_keys:
        for record in check_history(instance, key, database, HISTORY_LIMIT):
            if record.create_timestamp < since.timestamp():
                break  # newest first
            evaluation = check_evaluation(record)
            if evaluation is None or evaluation.passed:
                continue
            found.append(
                FailedCheck(
                    at=dt.datetime.fromtimestamp(record.create_timestamp, dt.UTC),
                    asset=key.asset_key.path[-1],
                    check=key.name,
                    severity="warning" if evaluation.severity == dg.AssetCheckSeverity.WARN else "error",
                    description=evaluation.description or "",
                    run_id=record.run_id,
                )
            )
    return sorted(found, key=lambda c: c.at, reverse=True)


def failed_runs(
    instance: dg.DagsterInstance, db: DatabaseConfig, since: dt.datetime, present: set[dg.AssetKey]
) -> list[FailedRun]:
    """Failed runs of the database (its partition, however launched), named by the asset that failed."""
    records = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], tags={PARTITION_TAG: db.name}, updated_after=since),
        limit=HISTORY_LIMIT,
    )
    step_assets = {key.to_python_identifier(): key.path[-1] for key in present}
    found = []
    for record in records:
        run = record.dagster_run
        why = run_failure(instance, run.run_id)
        what = step_assets.get(why.step_key or "") or run.tags.get("ops_pipelines/capability") or run.job_name
        found.append(FailedRun(record.update_timestamp, what, why.cause, run.run_id))
    return found


def capacity_view(instance: dg.DagsterInstance, config: OpsConfig, db: DatabaseConfig) -> CapacityView:
    forecast_event = latest_materialization(instance, dg.AssetKey("capacity_forecast"), db.name)
    sample_event = latest_materialization(instance, dg.AssetKey("capacity_sample"), db.name)
    view = CapacityView()
    sample = SampleFigures.from_metadata(materialization_metadata(sample_event))
    if sample is not None:
        view.figures.append(("database size", format_bytes(sample.database_bytes)))
        if sample.volume_used_ratio is not None:
            view.figures.append(
                ("volume used", f"{sample.volume_used_ratio:.1%} of {format_bytes(sample.volume_total_bytes or 0)}")
            )
    if forecast_event is None:
        view.note = "No forecast yet: capacity_forecast has not run."
        return view
    forecast = ForecastFigures.from_metadata(materialization_metadata(forecast_event))
    chart = config.reports_dir / f"capacity_{db.name}.png"
    view.chart = chart if chart.exists() else None
    if not forecast.enough_history:
        view.note = f"No forecast yet: {forecast.method}."
        return view
    view.figures.append(("projection", forecast.method))
    for days, size in forecast.horizons.items():
        view.figures.append((f"in {days} days", format_bytes(size)))
    # The same days, in the same words, as capacity_headroom and the gauge: the earlier model's.
    view.figures.append(("warning ratio reached", forecast.crossing_text("warning")))
    view.figures.append(("volume full", forecast.crossing_text("full")))
    headroom = check_history(
        instance, dg.AssetCheckKey(dg.AssetKey("capacity_forecast"), "capacity_headroom"), db.name, limit=1
    )
    evaluation = check_evaluation(headroom[0] if headroom else None)
    if evaluation is not None:
        view.headroom = ("passed: " if evaluation.passed else "FAILED: ") + (evaluation.description or "")
    return view


@dataclass(frozen=True)
class WrittenReport:
    files: list[str]  # the HTML path, the Markdown path and, with S3, the S3 URI of the HTML
    images: dict[str, bytes]  # the charts, by file name
    link: str | None  # with S3: a presigned URL of the HTML, valid LINK_SECONDS


def write_report(config: OpsConfig, report: Report, blocks: list) -> WrittenReport:
    """Charts, HTML and Markdown into the reports folder (each atomically), then to S3 when configured."""
    folder = config.reports_dir
    images: dict[str, bytes] = {}
    for section in report.databases:
        trend = backup_trend_chart(section.recovery, report.timezone, f"{section.name}: backup sizes, last 30 days")
        if trend is not None:
            images[f"backup_trend_{section.name}.png"] = trend
        if section.capacity.chart is not None:
            images[section.capacity.chart.name] = section.capacity.chart.read_bytes()
    day = local_day(report.generated_at, report.timezone)
    name = f"maintenance_report_{day}"
    outputs = {
        **{image: data for image, data in images.items() if image.startswith("backup_trend_")},
        f"{name}.html": render_html(blocks, images, f"Maintenance report {day}").encode(),
        f"{name}.md": render_markdown(blocks).encode(),
    }
    try:
        for file_name, data in outputs.items():
            atomic_write_bytes(folder / file_name, data, mode=config.reports.file_mode)
    except OSError as exc:
        raise OpsError(f"cannot write the report into {folder}: {exc.strerror or exc}") from None
    written = [str(folder / f"{name}.html"), str(folder / f"{name}.md")]
    offsite = offsite_storage(config)
    link = None
    if offsite is not None:
        for file_name, data in {**images, **outputs}.items():  # the capacity charts too: the Markdown links them
            offsite.write_bytes(f"{REPORTS_FOLDER}/{file_name}", data)
        written.append(offsite.uri(f"{REPORTS_FOLDER}/{name}.html"))
        link = offsite.browser_link(f"{REPORTS_FOLDER}/{name}.html", LINK_SECONDS)
    return WrittenReport(written, images, link)


def _week(instance: dg.DagsterInstance, key: dg.AssetKey, database: str, since: dt.datetime) -> list:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[database], after_timestamp=since.timestamp()),
        limit=HISTORY_LIMIT,
    ).records
    return sorted(records, key=lambda r: r.timestamp)


def _at(record) -> dt.datetime:
    return dt.datetime.fromtimestamp(record.timestamp, dt.UTC)


def _figures(metadata: dict, timezone: str) -> list[tuple[str, str]]:
    """The short figures of a materialization (numbers, flags, short texts), bytes made readable."""
    figures = []
    for name, entry in metadata.items():
        value = entry.value
        if isinstance(entry, (dg.IntMetadataValue, dg.FloatMetadataValue)):
            shown = format_bytes(value) if "bytes" in name else f"{value:,}"
        elif isinstance(entry, dg.BoolMetadataValue):
            shown = "yes" if value else "no"
        elif isinstance(entry, dg.TextMetadataValue) and len(value) <= 40:
            shown = _local_if_time(value, timezone)
        else:
            continue  # tables and long texts stay in the Dagster UI
        figures.append((name.replace("_", " "), shown))
    return figures


def _local_if_time(text: str, timezone: str) -> str:
    """An ISO timestamp (the archive's cutoff) in the configured zone; other texts as they are."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    return local_time(moment, timezone, with_zone=False) or text
