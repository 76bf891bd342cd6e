"""The spine of a training set: a Spark or pandas frame of keys and times, checked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.errors import ColumnTypeError, ConfigurationError, MissingColumnError
from seeknal_spark.training.lookup import FeatureLookup

__all__ = ["check_spine", "spine_frame"]


def spine_frame(spine_df: Any, timestamp_col: str, spark: Callable[[], SparkSession]) -> DataFrame:
    """``spine_df`` (Spark or pandas; naive pandas datetimes are UTC) as a Spark DataFrame
    whose ``timestamp_col`` is a date or timestamp."""
    if isinstance(spine_df, DataFrame):
        spine = spine_df
    else:
        import pandas as pd

        if not isinstance(spine_df, pd.DataFrame):
            raise TypeError(
                f"spine_df must be a Spark or pandas DataFrame, got {type(spine_df).__name__}"
            )
        frame = spine_df.copy()
        for col in frame.columns:  # naive pandas datetimes are UTC, not session time
            if pd.api.types.is_datetime64_dtype(frame[col]):
                frame[col] = frame[col].dt.tz_localize("UTC")
        spine = spark().createDataFrame(frame)
    if timestamp_col not in spine.columns:
        raise MissingColumnError(
            f"the spine has no timestamp column {timestamp_col!r} (columns: "
            f"{spine.columns}); add it or pass timestamp_col= to HistoricalFeatures"
        )
    dtype = spine.schema[timestamp_col].dataType
    if dtype.typeName() not in ("timestamp", "timestamp_ntz", "date"):
        raise ColumnTypeError(
            f"spine column {timestamp_col!r} is {dtype.simpleString()}: it must be a "
            "timestamp or date; convert it with F.to_timestamp()"
        )
    return spine


def check_spine(spine: DataFrame, lookups: Sequence[tuple[FeatureLookup, Sequence[str]]]) -> None:
    """Every lookup's join keys (``(lookup, join keys)`` pairs, resolved) are spine
    columns, and no output column collides with a spine column or another output."""
    columns = {c.lower(): c for c in spine.columns}
    owners: dict[str, str] = {}
    for lookup, join_keys in lookups:
        for key in join_keys:
            if key not in spine.columns:
                raise MissingColumnError(
                    f"the spine has no join key {key!r} of feature group {lookup.name!r} "
                    f"(spine columns: {spine.columns}); add or rename it"
                )
        for feature in lookup.features or ():
            out = lookup.output_name(feature)
            where = f"feature {feature!r} of {lookup.name!r}"
            if out.lower() in columns:
                raise ConfigurationError(
                    f"output column {out!r} ({where}) collides with spine column "
                    f"{columns[out.lower()]!r}: give the lookup a prefix= or drop the column"
                )
            if out.lower() in owners:
                raise ConfigurationError(
                    f"output column {out!r} comes from both {owners[out.lower()]} and "
                    f"{where}: give one of the lookups a prefix="
                )
            owners[out.lower()] = where
