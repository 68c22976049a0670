"""The capacity forecast: its chart, figures and headroom."""

from ops_pipelines.core.report.blocks import Block, Bullets, Heading, Image, Para
from ops_pipelines.core.report.model import DatabaseReport, Report


def capacity(report: Report, db: DatabaseReport) -> list[Block]:
    """The capacity forecast: note, chart, figures, headroom."""
    blocks: list[Block] = []
    blocks.append(Heading(3, "Capacity"))
    capacity = db.capacity
    if capacity.note:
        blocks.append(Para(capacity.note))
    if capacity.chart:
        blocks.append(Image(capacity.chart.name, f"{db.name}: capacity forecast"))
    if capacity.figures:
        blocks.append(Bullets([f"{label}: {value}" for label, value in capacity.figures]))
    if capacity.headroom:
        blocks.append(Para(f"Headroom check: {capacity.headroom}"))
    return blocks
