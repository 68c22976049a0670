"""Where a restore test restores: one small interface (base.py), one module per kind."""

from pathlib import Path
from typing import TYPE_CHECKING

from ops_pipelines.adapters.sandbox.base import RestoreSandbox, RestoreTarget, SandboxError

if TYPE_CHECKING:  # not at run time: the sandbox watchdog imports this package, and must start fast
    from ops_pipelines.config import DatabaseConfig


def sandbox_for(db: "DatabaseConfig", work_dir: Path | None = None) -> RestoreSandbox:
    """The sandbox `restore_test.sandbox` names; the docker SDK is imported only for docker."""
    settings = db.restore_test
    if settings.sandbox == "scratch_database":
        from ops_pipelines.adapters.sandbox.scratch_database import ScratchDatabaseSandbox

        if settings.scratch_dsn is None:  # the config refuses scratch_database without it
            raise SandboxError("restore_test.sandbox scratch_database needs restore_test.scratch_dsn")
        return ScratchDatabaseSandbox(settings.scratch_dsn.get_secret_value(), f"{db.name}_restore_check")
    if settings.sandbox == "docker":
        from ops_pipelines.adapters.sandbox.docker import DockerSandbox

        return DockerSandbox(image=settings.docker_image)
    from ops_pipelines.adapters.sandbox.local_cluster import LocalClusterSandbox

    return LocalClusterSandbox(bin_dir=settings.bin_dir, label=db.name)


__all__ = ["RestoreSandbox", "RestoreTarget", "SandboxError", "sandbox_for"]
