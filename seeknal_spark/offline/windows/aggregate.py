"""Time-window aggregates at each spine time, exact, by cogrouped sort-and-search.

:func:`window_aggregates` attaches to every spine row (keys and a time) aggregates of the
events of its key over windows ending at its time (:class:`~seeknal_spark.definitions.
aggregation.Aggregation`). Its docstring states *what* it computes as numbered steps.

*How*, and why this algorithm: spine rows and events are shuffled once each by a group
id - a hash bucket of the keys, or for a hot key one of its time ranges - and every group
is answered by :class:`~seeknal_spark.offline.windows.kernel.WindowKernel`: the group's
events are sorted by (key, time), each spine row and window becomes an index range found
by binary search, and every range is reduced at once from prefix structures (compensated
prefix sums, sparse tables, previous occurrences; :mod:`seeknal_spark.offline.windows.
reducers`). The cost is ``O((events + spine rows x windows) log n)`` per group whatever the
window lengths, against ``O(spine rows x events per window)`` for a key join with a range
filter (which explodes on a hot key) and a sort per window for Spark window functions; it
is exact at every spine time, unlike tiles of partial aggregates, whose edges are the
hop boundaries. Hot keys are split into time ranges (:mod:`seeknal_spark.offline.windows.
planner`): a range receives its own spine rows and the events of ``[range start - longest
window, range end]``, so no task needs one key's whole history, and an event is copied
only into the ranges its windows reach. Events no window can hold (other keys, outside the
spine's time span) are dropped before any shuffle.

It is a pure DataFrame-API function (no session settings, no RDDs, kernels through
``applyInArrow``), so it runs on Spark Connect too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DataType,
    IntegerType,
    LongType,
    StructField,
    StructType,
)

from seeknal_spark._executors import require_package_on_executors
from seeknal_spark._timestamps import is_time_type, utc_micros_column
from seeknal_spark.definitions.aggregation import Aggregation, check_columns, check_names
from seeknal_spark.errors import ColumnTypeError, ConfigurationError
from seeknal_spark.offline.pit.tables import T_COL, P
from seeknal_spark.offline.pit.validation import _key_cast, field_of
from seeknal_spark.offline.windows.kernel import WindowFeature, WindowKernel, as_cogroup_function
from seeknal_spark.offline.windows.planner import HotRange, WindowPlan, plan_windows
from seeknal_spark.offline.windows.tuning import WindowTuning

__all__ = ["WindowTuning", "window_aggregates"]

logger = logging.getLogger(__name__)

_G = f"{P}g"  # group id of the cogroup
_HI = f"{P}hi"  # index of a hot key
_BOUNDS = f"{P}bounds"  # times where the ranges of a hot key start
_COPIES = f"{P}copies"


def _validate(
    spine: DataFrame,
    events: DataFrame,
    keys: tuple[str, ...],
    spine_time_col: str,
    event_time_col: str,
    aggregations: Sequence[Aggregation],
) -> tuple[dict[str, DataType], list[StructField]]:
    """Schema-only checks; the spine key casts and the output fields."""
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"keys must be one or more column names, got {keys!r}")
    if any(c.startswith(P) for c in spine.columns):
        raise ConfigurationError(f"spine columns may not start with {P!r}: {spine.columns}")
    for df, col, what in (
        (spine, spine_time_col, "the spine"),
        (events, event_time_col, "the events"),
    ):
        dtype = field_of(df, col, what).dataType
        if not is_time_type(dtype):
            raise ColumnTypeError(
                f"column {col!r} of {what} is {dtype.simpleString()}: it must be a "
                "timestamp, timestamp_ntz or date (convert it with to_timestamp())"
            )
    casts: dict[str, DataType] = {}
    for key in keys:
        spine_type = field_of(spine, key, "the spine").dataType
        target = _key_cast(spine_type, field_of(events, key, "the events").dataType, key)
        if target is not None:
            casts[key] = target
    fields = check_columns(aggregations, events.schema, what="the events")
    check_names(aggregations, spine.columns, what="the spine")
    return casts, fields


def window_aggregates(
    spine: DataFrame,
    events: DataFrame,
    *,
    keys: str | Sequence[str],
    spine_time_col: str,
    event_time_col: str,
    aggregations: Sequence[Aggregation],
    inclusive: bool = True,
    tuning: WindowTuning | None = None,
) -> DataFrame:
    """Attach to each spine row the aggregates of its key's events over windows ending at
    its time.

    The value of feature ``name`` (window ``w`` of an aggregation) for a spine row is:

    1. **Keys equal.** Only events whose key columns (one or several: a composite key)
       equal the spine row's count. Spine keys are cast to the events' key types when both
       are numeric or both strings; other mismatches raise
       :class:`~seeknal_spark.errors.ColumnTypeError`.
    2. **The window.** Of those, the events with ``spine time - w < event time <= spine
       time`` (``< spine time`` when ``inclusive=False``): an event exactly ``w`` old is
       out. Exact at every spine time: the window's tail does not move in hops.
    3. **Nulls ignored.** Null values of the aggregated column are left out (SQL
       semantics), except by ``count_events``, which counts every event.
    4. **The function** (:data:`~seeknal_spark.definitions.aggregation.FUNCTIONS`) of the
       values left: ``count`` / ``count_events`` / ``approx_count_distinct`` (exact: error
       0) are longs, 0 for an empty window; the others are null for an empty window;
       ``stddev`` and ``variance`` are the sample ones, null below two values; ``last`` is
       the value of the latest event, ties on time going to the greatest value; sums and
       min/max follow Spark (NaN propagates into sums and is the greatest value).
    5. **Time zones.** Times are compared as UTC instants whatever the session time zone:
       a ``date`` is midnight UTC, a ``timestamp_ntz`` wall time is read as UTC.
    6. **Rows.** Every spine column is kept and every spine row gives exactly one output
       row, duplicates included; the order of rows is not promised. A spine row with a
       null key or time has empty windows, no error.

    Parameters
    ----------
    spine:
        Rows to label: the key columns and ``spine_time_col``.
    events:
        The events: the key columns, ``event_time_col`` and the aggregated columns.
    keys:
        Key columns, with the same names in both.
    spine_time_col, event_time_col:
        Time columns (timestamp, timestamp_ntz or date).
    aggregations:
        What to compute; one output column per aggregation and window.
    inclusive:
        Whether an event at exactly the spine time is in the window.
    tuning:
        Plan knobs (:class:`WindowTuning`); never change the result.

    Returns
    -------
    DataFrame
        The spine's columns followed by the features, in the order of ``aggregations``
        and their windows.

    Raises
    ------
    MissingColumnError, ColumnTypeError, ConfigurationError
        Before any Spark job: a missing column, a wrong type, a feature name that clashes
        with another or with a spine column.

    Examples
    --------
    >>> from datetime import datetime
    >>> from seeknal_spark.definitions.aggregation import Aggregation
    >>> txns = spark.createDataFrame(
    ...     [("a", datetime(2024, 1, 1), 5.0), ("a", datetime(2024, 1, 3), 7.0),
    ...      ("a", datetime(2024, 1, 8), 1.0)], "k string, ts timestamp, amount double")
    >>> spine = spark.createDataFrame(
    ...     [("a", datetime(2024, 1, 8)), ("b", datetime(2024, 1, 8))], "k string, t timestamp")
    >>> out = window_aggregates(spine, txns, keys="k", spine_time_col="t", event_time_col="ts",
    ...     aggregations=[Aggregation("amount", "sum", ["1d", "7d"]),
    ...                   Aggregation("amount", "count", "7d")])
    >>> sorted((r.k, r.amount_sum_1d, r.amount_sum_7d, r.amount_count_7d) for r in out.collect())
    [('a', 1.0, 8.0, 2), ('b', None, None, 0)]
    """
    key_cols = (keys,) if isinstance(keys, str) else tuple(keys)
    aggregations = list(aggregations)
    tuning = tuning or WindowTuning()
    casts, fields = _validate(spine, events, key_cols, spine_time_col, event_time_col, aggregations)
    if not aggregations:
        return spine
    ts_type = spine.schema[spine_time_col].dataType
    spine_time = utc_micros_column(F.col(f"`{spine_time_col}`"), ts_type)
    columns = list(dict.fromkeys(a.column for a in aggregations if a.uses_values))
    max_window = max(a.max_window for a in aggregations)
    plan = plan_windows(
        spine,
        events,
        keys=key_cols,
        casts=casts,
        event_time_col=event_time_col,
        columns=columns,
        spine_time=spine_time,
        max_window=max_window,
        inclusive=inclusive,
        tuning=tuning,
    )
    logger.info("%s", plan.describe())
    require_package_on_executors(spine.sparkSession)  # the kernel runs there
    features = tuple(
        WindowFeature(
            name=name,
            function=agg.function,
            column=plan.value_cols[agg.column] if agg.uses_values else None,
            window_us=window // timedelta(microseconds=1),
        )
        for agg in aggregations
        for name, window in zip(agg.names, agg.windows, strict=True)
    )
    return _run(spine, plan, spine_time, features, fields, max_window, inclusive)


def _run(
    spine: DataFrame,
    plan: WindowPlan,
    spine_time: Column,
    features: tuple[WindowFeature, ...],
    fields: list[StructField],
    max_window: timedelta,
    inclusive: bool,
) -> DataFrame:
    """Group ids on both sides, then one cogrouped kernel call per group."""
    kcols = list(plan.source.key_cols)
    spine_cols = list(spine.columns)
    left = spine.select(
        *[F.col(f"`{c}`") for c in spine_cols],
        *plan.source.spine_key_columns(),
        spine_time.alias(T_COL),
    )
    right = plan.events.select(*kcols, T_COL, *plan.value_cols.values())
    bucket = F.pmod(F.xxhash64(*[F.col(c) for c in kcols]), F.lit(plan.buckets)).cast("int")
    if plan.hot_keys:
        span = max_window // timedelta(microseconds=1)
        left, right = _split_hot_keys(left, right, plan.hot_keys, kcols, bucket, plan.buckets, span)
    else:
        left, right = left.withColumn(_G, bucket), right.withColumn(_G, bucket)
    kernel = WindowKernel(
        spine_cols=tuple(spine_cols),
        key_cols=tuple(kcols),
        time_col=T_COL,
        features=features,
        inclusive=inclusive,
    )
    schema = StructType([*spine.schema.fields, *fields])
    function = as_cogroup_function(kernel, schema.fieldNames())
    return left.groupBy(_G).cogroup(right.groupBy(_G)).applyInArrow(function, schema)


def _split_hot_keys(
    left: DataFrame,
    right: DataFrame,
    hot_keys: Sequence[HotRange],
    kcols: list[str],
    bucket: Column,
    buckets: int,
    span: int,
) -> tuple[DataFrame, DataFrame]:
    """Group ids with hot keys split: a spine row goes to the range holding its time, an
    event to every range holding a time in ``[event time, event time + longest window]``
    (the spine times whose windows can hold it)."""
    logger.info("window aggregation: %d hot keys split into time ranges", len(hot_keys))
    key_fields = [StructField(kc, right.schema[kc].dataType, False) for kc in kcols]
    hot = right.sparkSession.createDataFrame(
        [(*h.key, i, list(h.bounds)) for i, h in enumerate(hot_keys)],
        StructType(
            [
                *key_fields,
                StructField(_HI, IntegerType(), False),
                StructField(_BOUNDS, ArrayType(LongType(), False), False),
            ]
        ),
    )
    most = max(len(h.bounds) for h in hot_keys) + 1
    t = F.col(T_COL)

    def ranges_up_to(time: Column) -> Column:  # how many ranges start at or before time
        return F.size(F.filter(F.col(_BOUNDS), lambda b: b <= time))

    def group_of(r: Column) -> Column:
        return F.when(F.col(_HI).isNull(), bucket).otherwise(
            F.lit(buckets) + F.col(_HI) * F.lit(most) + r
        )

    left_cols = left.columns
    left = left.join(F.broadcast(hot), kcols, "left").select(
        *[F.col(f"`{c}`") for c in left_cols], group_of(ranges_up_to(t)).alias(_G)
    )
    right_cols = right.columns
    copies = F.when(F.col(_HI).isNull(), F.lit(0)).otherwise(
        ranges_up_to(t + F.lit(span)) - ranges_up_to(t)
    )
    right = (
        right.join(F.broadcast(hot), kcols, "left")
        .select(*right_cols, group_of(ranges_up_to(t)).alias(_G), copies.alias(_COPIES))
        .select(*right_cols, F.explode(F.sequence(F.col(_G), F.col(_G) + F.col(_COPIES))).alias(_G))
    )
    return left, right
