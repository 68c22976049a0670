"""The report's charts, drawn with matplotlib (imported only when a chart is drawn)."""

import io

from ops_pipelines.core.backups.recovery_status import RecoveryStatus
from ops_pipelines.localtime import zone


def backup_trend_chart(status: RecoveryStatus, timezone: str, title: str) -> bytes | None:
    """Backup sizes over the trend window as a PNG; None without any backup in it."""
    if not status.recent_sizes:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    tz = zone(timezone)
    figure, axes = plt.subplots(figsize=(9, 2.8), dpi=100)
    times = [moment.astimezone(tz).replace(tzinfo=None) for moment, _ in status.recent_sizes]
    # matplotlib plots datetimes through its units registry; its stubs only know numbers and arrays
    axes.plot(times, [size / 1e6 for _, size in status.recent_sizes], marker="o", markersize=3, color="#1f77b4")  # pyright: ignore[reportArgumentType]
    axes.set_title(title)
    axes.set_ylabel("MB")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
