"""The sections of a database's part of the weekly report, each a function of the report and the
database returning its blocks, in the order they appear. A capability adds one by adding a function
here and its name to SECTIONS."""

from collections.abc import Callable

from ops_pipelines.core.report.blocks import Block
from ops_pipelines.core.report.model import DatabaseReport, Report
from ops_pipelines.core.report.sections.capacity import capacity
from ops_pipelines.core.report.sections.checks import checks
from ops_pipelines.core.report.sections.health_week import health_week
from ops_pipelines.core.report.sections.maintenance import maintenance
from ops_pipelines.core.report.sections.performance_schema_security import performance_schema_security
from ops_pipelines.core.report.sections.recovery import recovery
from ops_pipelines.core.report.sections.traffic import traffic

Section = Callable[[Report, DatabaseReport], list[Block]]

SECTIONS: tuple[Section, ...] = (
    recovery,
    checks,
    health_week,
    maintenance,
    capacity,
    traffic,
    performance_schema_security,
)
