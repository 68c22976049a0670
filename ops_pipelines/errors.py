"""Domain errors. Their messages are the one-line causes users read in the Dagster UI."""


class OpsError(Exception):
    """Base of every failure ops_pipelines reports on purpose."""


class ConfigError(OpsError):
    """The YAML config (or its environment) is wrong; the message names the file and key."""


class DatabaseError(OpsError):
    """A PostgreSQL server refused, was unreachable, or a statement failed or timed out."""


class CommandFailed(OpsError):
    """An external program (initdb, pg_ctl, pg_dump ...) exited badly or timed out."""


class ClusterError(OpsError):
    """A throwaway local PostgreSQL cluster could not be created, started or stopped."""


class TransientError(OpsError):
    """A failure worth retrying later (server unreachable, lock held): assets ask Dagster to retry
    these; data-integrity failures are never of this kind."""


class DatabaseUnavailable(DatabaseError, TransientError):
    """The server refused or did not answer the connection."""


class LockTimeout(DatabaseError, TransientError):
    """A statement gave up waiting for a lock (lock_timeout)."""
