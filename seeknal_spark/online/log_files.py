"""The files of a serving log: one Parquet or JSON-lines file per flush and date.

Helpers of :class:`~seeknal_spark.online.serving_log.ServingLogger`: value conversion,
and writing a batch of records to one (temporary) file, in either format.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from seeknal_spark.errors import ConfigurationError

__all__ = [
    "REQUEST_DATE_COL",
    "REQUEST_ID_COL",
    "REQUEST_TIME_COL",
    "SUFFIXES",
    "Format",
    "arrow_type",
    "plain",
    "pyarrow_module",
    "utc",
    "write_jsonl",
    "write_parquet",
]

_log = logging.getLogger(__name__)

REQUEST_TIME_COL = "request_time"
REQUEST_ID_COL = "request_id"
REQUEST_DATE_COL = "request_date"
SUFFIXES = {"parquet": ".parquet", "jsonl": ".jsonl"}
Format = Literal["parquet", "jsonl"]


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive values are UTC)."""
    if not isinstance(value, datetime):
        raise TypeError(f"request_time must be a datetime, got {type(value).__name__}")
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def plain(value: Any) -> Any:
    """numpy scalars to Python values; everything else unchanged."""
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        return item()
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    plain_value = plain(value)
    if plain_value is not value:
        return plain_value
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} to a JSON serving log")


def write_jsonl(target: Path, records: list[dict[str, Any]]) -> None:
    """Write ``records`` as one JSON-lines file, synced to disk."""
    with open(target, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, default=_json_default, allow_nan=True))
            out.write("\n")
        out.flush()
        os.fsync(out.fileno())


def pyarrow_module() -> Any:
    """pyarrow, or a ConfigurationError naming what to install."""
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        raise ConfigurationError(
            "writing a Parquet serving log needs pyarrow: pip install pyarrow "
            "(or use format='jsonl')"
        ) from exc
    return pyarrow


def arrow_type(pa_mod: Any, column: str, value: Any) -> Any:
    """The pyarrow type a ``schema=`` pin names (a type name or a ``pyarrow.DataType``)."""
    if isinstance(value, pa_mod.DataType):
        return value
    names = {
        "double": pa_mod.float64(),
        "float": pa_mod.float32(),
        "bigint": pa_mod.int64(),
        "long": pa_mod.int64(),
        "int": pa_mod.int32(),
        "integer": pa_mod.int32(),
        "string": pa_mod.string(),
        "boolean": pa_mod.bool_(),
        "bool": pa_mod.bool_(),
        "timestamp": pa_mod.timestamp("us", tz="UTC"),
        "date": pa_mod.date32(),
    }
    if not isinstance(value, str) or value.lower() not in names:
        raise ValueError(
            f"schema type of column {column!r} must be a pyarrow DataType or one "
            f"of {sorted(names)}, got {value!r}"
        )
    return names[value.lower()]


def write_parquet(target: Path, records: list[dict[str, Any]], arrow_types: dict[str, Any]) -> None:
    """Write ``records`` as one Parquet file; ``arrow_types`` (column -> pyarrow type) is
    used where it fits and learns the type of every column first seen here."""
    pa_mod = pyarrow_module()
    import pyarrow.parquet as pq

    names = list(dict.fromkeys(name for record in records for name in record))
    arrays, fields = [], []
    for name in names:
        values = [record.get(name) for record in records]
        known = arrow_types.get(name)
        array = None
        if known is not None:
            try:
                array = pa_mod.array(values, type=known)
            except (pa_mod.ArrowException, TypeError, ValueError):
                _log.warning(
                    "serving log: column %r does not fit its type %s in this "
                    "batch; writing it with an inferred type",
                    name,
                    known,
                )
        if array is None:
            try:
                array = pa_mod.array(values)
            except (pa_mod.ArrowException, TypeError, ValueError):
                _log.warning(
                    "serving log: column %r mixes value types; writing it as strings", name
                )
                array = pa_mod.array([None if v is None else str(v) for v in values])
            if pa_mod.types.is_null(array.type):
                continue  # all null and never typed: leave it out (reads back as null)
            arrow_types.setdefault(name, array.type)
        arrays.append(array)
        fields.append(pa_mod.field(name, array.type))
    table = pa_mod.Table.from_arrays(arrays, schema=pa_mod.schema(fields))
    pq.write_table(table, target)
