"""How a path or table name becomes a DataFrame: the one input-format policy.

Every reader of user data (feature-group inputs, YAML inputs, the CLI's training and drift
files) goes through :func:`infer_format` and :func:`read_source`, so a path is read the
same way everywhere:

1. An explicit format wins.
2. Else the path's suffix: ``.parquet``, ``.csv``, ``.json``, ``.orc``, ``.delta``.
3. Else a local folder: Delta when it holds a ``_delta_log``, Parquet when it holds
   ``.parquet`` files (what ``DataFrame.write.parquet`` leaves).
4. Else Delta, the store's own format (a remote URI such as ``s3://...`` is not listed).

A source that matches ``name``, ``db.name`` or ``catalog.db.name`` is a table name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.errors import ConfigurationError, NotFoundError

__all__ = ["FORMATS", "infer_format", "is_table_name", "read_path", "read_source"]

#: formats a path can be read as, by suffix
FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".orc": "orc", ".delta": "delta"}
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}")
_CSV_DEFAULTS = {"header": "true", "inferSchema": "true"}


def is_table_name(source: str) -> bool:
    """Whether ``source`` reads as a (catalog.)(db.)table name rather than a path.

    Examples
    --------
    >>> is_table_name("main.raw.transactions"), is_table_name("/data/raw/txns")
    (True, False)
    """
    return _TABLE_NAME.fullmatch(source) is not None


def infer_format(path: str, fmt: str | None = None) -> str:
    """The format ``path`` is read (or written) as: the policy of the module docstring.

    Examples
    --------
    >>> infer_format("/data/txns.parquet"), infer_format("s3://bucket/features")
    ('parquet', 'delta')
    >>> infer_format("/data/txns", fmt="csv")
    'csv'
    """
    if fmt:
        if fmt not in FORMATS.values():
            raise ConfigurationError(
                f"format {fmt!r} for {path!r} is not one of {sorted(set(FORMATS.values()))}"
            )
        return fmt
    lowered = path.lower().rstrip("/")
    for suffix, name in FORMATS.items():
        if lowered.endswith(suffix):
            return name
    local = path[len("file:") :] if path.startswith("file:") else path
    if "://" not in local and os.path.isdir(local):
        if os.path.isdir(os.path.join(local, "_delta_log")):
            return "delta"
        if any(entry.endswith(".parquet") for entry in os.listdir(local)):
            return "parquet"
    return "delta"


def read_path(
    spark: SparkSession,
    path: str,
    fmt: str | None = None,
    options: Mapping[str, str] | None = None,
    *,
    what: str = "input",
) -> DataFrame:
    """Read ``path`` in the format :func:`infer_format` gives (CSV with a header row).

    ``what`` names the reader in errors (``"feature group 'x' input 'txns'"``); a path
    that does not exist raises :class:`~seeknal_spark.errors.NotFoundError` naming it.
    """
    chosen = infer_format(path, fmt)
    reader = spark.read.format(chosen)
    merged = {**_CSV_DEFAULTS, **(options or {})} if chosen == "csv" else dict(options or {})
    for key, value in merged.items():
        reader = reader.option(key, value)
    try:
        return reader.load(path)
    except Exception as exc:
        if _is_missing_path(exc):
            raise NotFoundError(
                f"{what}: path {path!r} does not exist (read as {chosen}); check the path "
                "or create the data first"
            ) from exc
        raise


def read_source(
    spark: SparkSession,
    source: str,
    fmt: str | None = None,
    options: Mapping[str, str] | None = None,
    *,
    what: str = "input",
) -> DataFrame:
    """A table name through the catalog, anything else through :func:`read_path`."""
    if fmt is None and is_table_name(source):
        try:
            return spark.read.table(source)
        except Exception as exc:
            if "TABLE_OR_VIEW_NOT_FOUND" in str(exc):
                raise NotFoundError(
                    f"{what}: table {source!r} does not exist; check the name or create it"
                ) from exc
            raise
    return read_path(spark, source, fmt, options, what=what)


def _is_missing_path(exc: Exception) -> bool:
    text = str(exc)
    return (
        "PATH_NOT_FOUND" in text
        or "is not a Delta table" in text
        or ("DELTA_MISSING_DELTA_TABLE" in text)
    )
