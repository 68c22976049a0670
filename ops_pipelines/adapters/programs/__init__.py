"""One typed module per external program: the only place its command line is built and its output
parsed. Each runs through `adapters.commands` (timeouts, process-group kills, a minimal environment,
passwords only in the child's environment), so core calls functions and never builds an argv.

    version.py      `<program> --version` of any PostgreSQL binary, parsed once
    pg_dump.py      the newest-enough pg_dump, and the custom-format dump streamed to the caller
    pg_dumpall.py   the server's roles and tablespaces (--globals-only)
    pg_restore.py   restore into a database, and the archive's catalogue (--list) parsed
    pg_server.py    the cluster programs: initdb, postgres (single-user mode) and pg_ctl
"""
