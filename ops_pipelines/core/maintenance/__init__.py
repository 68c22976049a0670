"""Routine maintenance: table statistics, vacuum, reindex, integrity (amcheck) and maintenance windows."""
