"""UTC handling shared by writes and joins: every event time is stored as a UTC instant."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DateType, TimestampNTZType, TimestampType

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROS_PER_DAY = 86_400_000_000
TIME_TYPES = (TimestampType, TimestampNTZType, DateType)


def is_time_type(dtype: DataType) -> bool:
    """True for the column types accepted as event or spine times."""
    return isinstance(dtype, TIME_TYPES)


def utc_micros_column(column: Column, dtype: DataType) -> Column:
    """Microseconds since the Unix epoch (UTC) of a date / timestamp / timestamp_ntz column.

    ``TimestampType`` values are instants; ``DateType`` values are midnight UTC and
    ``TimestampNTZType`` wall times are read as UTC, so the result never depends on the
    session time zone.
    """
    if isinstance(dtype, TimestampType):
        return F.unix_micros(column)
    if isinstance(dtype, DateType):
        return F.unix_date(column).cast("long") * F.lit(_MICROS_PER_DAY)
    if isinstance(dtype, TimestampNTZType):
        # built from the wall-clock fields alone: no conversion through any time zone
        # (so also exact for wall times that fall in a DST gap of the session zone)
        seconds = F.date_part(F.lit("SECOND"), column) * F.lit(1_000_000)  # with the fraction
        return (
            F.unix_date(F.to_date(column)).cast("long") * F.lit(_MICROS_PER_DAY)
            + F.hour(column).cast("long") * F.lit(3_600_000_000)
            + F.minute(column).cast("long") * F.lit(60_000_000)
            + seconds.cast("long")
        )
    raise TypeError(f"not a date/timestamp type: {dtype.simpleString()}")


def utc_instant(column: Column, dtype: DataType) -> Column:
    """Turn a date / timestamp / timestamp_ntz column into a UTC instant (TimestampType).

    Dates become midnight UTC and wall-clock ``timestamp_ntz`` values are read as UTC, so
    the result never depends on the session time zone.
    """
    if isinstance(dtype, TimestampType):
        return column
    return F.timestamp_micros(utc_micros_column(column, dtype))


def to_utc_datetime(value: datetime | date) -> datetime:
    """A Python datetime/date as an aware UTC datetime; naive values are taken as UTC."""
    if not isinstance(value, datetime):
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
        raise TypeError(f"expected a datetime or date, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def utc_micros(value: datetime | date) -> int:
    """Microseconds since the Unix epoch of a datetime/date (naive values are UTC)."""
    return (to_utc_datetime(value) - _EPOCH) // timedelta(microseconds=1)


def utc_literal(value: datetime | date) -> Column:
    """A TimestampType literal for a Python datetime, independent of the session time zone."""
    return F.timestamp_micros(F.lit(utc_micros(value)))


def utc_sql_literal(value: datetime | date) -> str:
    """SQL text for the same instant, for Delta ``replaceWhere`` predicates."""
    return f"timestamp_micros({utc_micros(value)})"


def arrow_utc(table: pa.Table) -> pa.Table:
    """``table`` with every zoned timestamp column labelled UTC, as Spark expects back.

    Spark hands Arrow UDFs (``applyInArrow``, ``mapInArrow``) timestamps labelled with the
    session time zone but checks their results against ``timestamp[us, tz=UTC]``.
    Relabelling keeps the stored instants (Arrow keeps zoned timestamps as UTC
    microseconds), so results are the same whatever the session zone; ``timestamp_ntz``
    columns (no zone) are left as they are. Every Arrow path returning rows to Spark
    passes its result through here.

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"t": pa.array([0], pa.timestamp("us", tz="America/Los_Angeles"))})
    >>> arrow_utc(t).schema.field("t").type
    TimestampType(timestamp[us, tz=UTC])

    Timestamps nested in structs, arrays and maps are relabelled too:

    >>> s = pa.table({"s": pa.array([{"t": 0}], pa.struct([("t", t.schema.field("t").type)]))})
    >>> arrow_utc(s).schema.field("s").type
    StructType(struct<t: timestamp[us, tz=UTC]>)
    """
    fields = [field.with_type(_utc_type(field.type)) for field in table.schema]
    if all(new.type == old.type for new, old in zip(fields, table.schema, strict=True)):
        return table
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _utc_type(dtype: pa.DataType) -> pa.DataType:
    """``dtype`` with every zoned timestamp in it (nested ones included) labelled UTC."""
    if pa.types.is_timestamp(dtype):
        return pa.timestamp("us", tz="UTC") if dtype.tz is not None else dtype
    if pa.types.is_struct(dtype):
        return pa.struct([f.with_type(_utc_type(f.type)) for f in dtype])
    if pa.types.is_map(dtype):
        key = dtype.key_field.with_type(_utc_type(dtype.key_field.type))
        item = dtype.item_field.with_type(_utc_type(dtype.item_field.type))
        return pa.map_(key, item, keys_sorted=dtype.keys_sorted)
    if pa.types.is_list(dtype):
        return pa.list_(dtype.value_field.with_type(_utc_type(dtype.value_type)))
    if pa.types.is_large_list(dtype):
        return pa.large_list(dtype.value_field.with_type(_utc_type(dtype.value_type)))
    return dtype
