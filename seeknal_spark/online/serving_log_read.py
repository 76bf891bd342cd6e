"""Reading a serving log back with Spark: :func:`read_serving_log`."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from seeknal_spark.errors import NotFoundError
from seeknal_spark.online.log_files import (
    REQUEST_DATE_COL,
    REQUEST_ID_COL,
    REQUEST_TIME_COL,
    SUFFIXES,
    Format,
    utc,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["read_serving_log"]

_RESERVED = (REQUEST_TIME_COL, REQUEST_ID_COL, REQUEST_DATE_COL)
_SUFFIX = SUFFIXES


def read_serving_log(
    spark: SparkSession,
    path: str | os.PathLike[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    format: Format | None = None,
) -> DataFrame:
    """The served vectors written by :class:`ServingLogger`, as a Spark DataFrame.

    Parameters
    ----------
    spark:
        The session to read with.
    path:
        The logger's folder (local, or any URI Spark reads when ``format`` is given).
    start, end:
        Keep rows with ``start <= request_time < end`` (naive values are UTC); whole days
        outside are not read (``request_date`` partitions).
    format:
        ``"parquet"`` or ``"jsonl"``; default: detected from the files of a local folder,
        else Parquet.

    Returns
    -------
    DataFrame
        ``request_time`` (timestamp), ``request_id``, the key and feature columns, and
        ``request_date`` (date).

    Raises
    ------
    NotFoundError
        A local folder that holds no log files.
    """
    from pyspark.sql import functions as F

    location = os.fspath(path)
    if format is None:
        format = _detect_format(location)
    elif format not in _SUFFIX:
        raise ValueError(f"format must be 'parquet' or 'jsonl', got {format!r}")
    reader = spark.read.option("mergeSchema", "true").option("basePath", location)
    reader = reader.option("pathGlobFilter", f"*{_SUFFIX[format]}")
    df = reader.parquet(location) if format == "parquet" else reader.json(location)
    df = df.withColumn(REQUEST_TIME_COL, F.col(REQUEST_TIME_COL).cast("timestamp"))
    if start is not None:
        start_utc = utc(start)
        df = df.where(
            (F.col(REQUEST_DATE_COL) >= F.lit(start_utc.date()))
            & (F.col(REQUEST_TIME_COL) >= F.lit(start_utc))
        )
    if end is not None:
        end_utc = utc(end)
        df = df.where(
            (F.col(REQUEST_DATE_COL) <= F.lit(end_utc.date()))
            & (F.col(REQUEST_TIME_COL) < F.lit(end_utc))
        )
    rest = [c for c in df.columns if c not in _RESERVED]
    return df.select(REQUEST_TIME_COL, REQUEST_ID_COL, *rest, REQUEST_DATE_COL)


def _detect_format(location: str) -> Format:
    folder = Path(location.removeprefix("file:"))
    if "://" in location and not location.startswith("file:"):
        return "parquet"
    if not folder.is_dir():
        raise NotFoundError(
            f"no serving log at {location}: pass the folder a ServingLogger writes to"
        )
    for fmt, suffix in _SUFFIX.items():
        if next(folder.glob(f"*/*{suffix}"), None) is not None:
            return fmt  # type: ignore[return-value]
    raise NotFoundError(
        f"the serving log folder {location} holds no .parquet or .jsonl "
        "files yet: log and flush (or close) a ServingLogger first"
    )
