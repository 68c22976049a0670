"""Helpers every record uses: reading one entry back, and byte counts with their human size."""

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from ops_pipelines.units import format_bytes


def value(metadata, name: str, default=None):
    """A metadata entry's plain value, from a stored event (MetadataValue) or a fresh dict (raw)."""
    entry = metadata.get(name)
    if entry is None:
        return default
    return entry.value if isinstance(entry, dg.MetadataValue) else entry


def with_sizes(metadata: dict) -> dict:
    """Every top-level byte count followed by its human size: `dump_bytes` 1234567 gains `dump_size`
    "1.2 MB" (decimal units, as everywhere). The integer stays, for sorting and plotting."""
    out = {}
    for key, value in metadata.items():
        out[key] = value
        count = value.value if isinstance(value, dg.IntMetadataValue) else None
        if "bytes" in key.split("_") and count is not None:
            out[key.replace("bytes", "size")] = dg.MetadataValue.text(format_bytes(count))
    return out


def table(rows: Iterable[Mapping[str, Any]], /, **columns: str) -> dg.TableMetadataValue:
    """A metadata table the UI shows with typed, sortable columns: `columns` names each column and
    its type ("string", "int", "float", "bool"), in display order; each row maps those names (other
    keys of a row are not shown)."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()])
    return dg.MetadataValue.table(
        [dg.TableRecord({name: row[name] for name in columns}) for row in rows], schema=schema
    )
