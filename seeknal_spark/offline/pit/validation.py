"""Schema-only checks of a point-in-time join, before any Spark job runs.

Missing columns raise :class:`~seeknal_spark.errors.MissingColumnError`, wrong types
:class:`~seeknal_spark.errors.ColumnTypeError`, colliding output names
:class:`~seeknal_spark.errors.ConfigurationError`; each names the column and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql.types import DataType, NumericType, StringType, StructField

from seeknal_spark._timestamps import is_time_type
from seeknal_spark.errors import ColumnTypeError, ConfigurationError, MissingColumnError
from seeknal_spark.offline.pit.source import AsOfSource
from seeknal_spark.offline.pit.tables import P, sortable

__all__ = ["field_of", "validate"]


def field_of(df: DataFrame, name: str, what: str) -> StructField:
    """The field ``name`` of ``df`` (``what`` names ``df`` in the error when it is missing)."""
    for f in df.schema.fields:
        if f.name == name:
            return f
    raise MissingColumnError(
        f"{what} has no column {name!r}; its columns are {df.columns}: add it or fix the name"
    )


def _key_cast(spine_type: DataType, source_type: DataType, key: str) -> DataType | None:
    """The type to cast the spine key to, or None when the types already agree."""
    if spine_type == source_type:
        return None
    if isinstance(spine_type, NumericType) and isinstance(source_type, NumericType):
        return source_type
    if isinstance(spine_type, StringType) and isinstance(source_type, StringType):
        return source_type
    raise ColumnTypeError(
        f"key column {key!r} is {spine_type.simpleString()} in the spine but "
        f"{source_type.simpleString()} in the feature table: cast the spine column to "
        f"{source_type.simpleString()} (numeric and string keys are cast automatically)"
    )


def validate(
    spine: DataFrame, sources: Sequence[AsOfSource], timestamp_col: str
) -> list[dict[str, DataType]]:
    """Schema-only checks; returns, per source, the spine key casts needed.

    Examples
    --------
    >>> spine = spark.createDataFrame([("a", 1)], "k string, t int")
    >>> validate(spine, [], "t")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seeknal_spark.errors.ColumnTypeError: spine column 't' is int: it must be a timestamp, ...
    """
    if any(c.startswith(P) for c in spine.columns):
        raise ConfigurationError(f"spine columns may not start with {P!r}: {spine.columns}")
    ts = field_of(spine, timestamp_col, "the spine")
    if not is_time_type(ts.dataType):
        raise ColumnTypeError(
            f"spine column {timestamp_col!r} is {ts.dataType.simpleString()}: it must be a "
            "timestamp, timestamp_ntz or date (convert it with to_timestamp())"
        )
    seen_out: dict[str, str] = {}
    spine_cols = {c.lower() for c in spine.columns}
    casts: list[dict[str, DataType]] = []
    for i, src in enumerate(sources):
        if not isinstance(src, AsOfSource):
            raise TypeError(f"sources[{i}] is {type(src).__name__}, expected AsOfSource")
        what = f"feature table #{i}"
        cast: dict[str, DataType] = {}
        for key in src.keys:
            sf = field_of(spine, key, "the spine")
            ff = field_of(src.df, key, what)
            target = _key_cast(sf.dataType, ff.dataType, key)
            if target is not None:
                cast[key] = target
        casts.append(cast)
        et = field_of(src.df, src.event_time_col, what)
        if not is_time_type(et.dataType):
            raise ColumnTypeError(
                f"event time column {src.event_time_col!r} of {what} is "
                f"{et.dataType.simpleString()}: it must be a timestamp, timestamp_ntz or date"
            )
        for col in src.tie_break_cols:
            tf = field_of(src.df, col, what)
            if not sortable(tf.dataType):
                raise ColumnTypeError(
                    f"tie-break column {col!r} of {what} is {tf.dataType.simpleString()}, "
                    "which the join cannot order: use a timestamp, number or string"
                )
        for feat in src.features:
            field_of(src.df, feat, what)
            out = src.output_name(feat)
            if out.lower() in spine_cols:
                raise ConfigurationError(
                    f"output column {out!r} (feature {feat!r} of {what}) already exists in "
                    "the spine: rename it with output_names or a prefix"
                )
            if out.lower() in seen_out:
                raise ConfigurationError(
                    f"output column {out!r} comes from both {seen_out[out.lower()]} and "
                    f"feature {feat!r} of {what}: rename one with output_names or a prefix"
                )
            seen_out[out.lower()] = f"feature {feat!r} of {what}"
    return casts
