"""The point-in-time (as-of) join that builds training data without leakage.

:func:`point_in_time_join` attaches to every row of a *spine* (entity keys and a prediction
time) the latest feature values known at that time, from one or more feature tables
(:class:`~seeknal_spark.offline.pit.source.AsOfSource`). Its docstring states *what* it
computes as numbered steps; *how* is decided by :mod:`seeknal_spark.offline.pit.planner`
(a typed :class:`~seeknal_spark.offline.pit.planner.PitPlan`: feature rows pruned per
spine key before any shuffle, hash buckets of keys, hot keys split into time windows with
lead-ins) and run by :mod:`seeknal_spark.offline.pit.merge` (one cogrouped sort-and-scan
merge per set of key columns, each group merged by :mod:`seeknal_spark.offline.pit.kernel`)
or :mod:`seeknal_spark.offline.pit.key_join`.

It is a pure DataFrame-API function: no session settings, no RDDs. Two small jobs run side
by side before the join itself: the spine's time range and distinct-key estimate (one row
to the driver), and a sample of the feature keys and event times to find hot keys (at most
``PitTuning.sample_rows`` rows per feature table reach the driver, as Arrow).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from seeknal_spark._executors import require_package_on_executors
from seeknal_spark._timestamps import utc_micros, utc_micros_column
from seeknal_spark.offline.pit.key_join import join_pass
from seeknal_spark.offline.pit.merge import merge_pass
from seeknal_spark.offline.pit.planner import PitPlan, plan_join
from seeknal_spark.offline.pit.source import AsOfSource, feature_hash
from seeknal_spark.offline.pit.tables import P
from seeknal_spark.offline.pit.tuning import PitTuning
from seeknal_spark.offline.pit.validation import field_of, validate

__all__ = ["AsOfSource", "PitTuning", "feature_hash", "point_in_time_join"]

logger = logging.getLogger(__name__)


def point_in_time_join(
    spine: DataFrame,
    sources: Sequence[AsOfSource],
    *,
    timestamp_col: str = "prediction_time",
    inclusive: bool = True,
    feature_start_time: datetime | date | None = None,
    tuning: PitTuning | None = None,
) -> DataFrame:
    """Attach to each spine row the feature values known at its time.

    For every spine row and every source, the feature row used is chosen as follows:

    1. **Keys equal.** The source's key columns (one or several: a composite key) equal
       the spine's columns of the same names. Each source uses its own keys. Spine keys
       are cast to the source's key type when both are numeric or both strings; other
       mismatches raise :class:`~seeknal_spark.errors.ColumnTypeError`.
    2. **Not after the spine time.** Among those rows, the one with the greatest event time
       ``<= spine time`` (``<`` when ``inclusive=False``).
    3. **TTL.** With a TTL, only rows with ``event time > spine time - ttl`` count: a row
       exactly ``ttl`` old has expired.
    4. **Ties.** Rows with equal event time are ordered by ``tie_break_cols``, then by the
       feature values in the order listed, then by a hash (:func:`feature_hash`) of the
       features that cannot be ordered (arrays, maps, structs), if any; the greatest wins,
       nulls are lowest (NaN is above every number). There is never more than one output
       row per spine row.
    5. **No match** gives null features, or the source's ``defaults``. A matched row whose
       value is null stays null (defaults fill only missing matches).
    6. **feature_start_time** drops feature rows with event time before it, before anything
       else: a spine row whose latest value predates it gets no match (or its default), even
       when that value would still be within the TTL.
    7. **Time zones.** All times are compared as UTC instants whatever the session time
       zone: a ``date`` is midnight UTC, a ``timestamp_ntz`` wall time is read as UTC, a
       naive Python ``feature_start_time`` is UTC.
    8. **Rows.** Every spine column is kept and every spine row gives exactly one output
       row, duplicates included; the order of rows is not promised. A spine row with a null
       key or time gets null features (or defaults), no error.

    Parameters
    ----------
    spine:
        Rows to label: the key columns of every source and ``timestamp_col``.
    sources:
        The feature tables, see :class:`AsOfSource`.
    timestamp_col:
        The spine's time column (timestamp, timestamp_ntz or date).
    inclusive:
        Whether a feature row stamped exactly at the spine time may be used.
    feature_start_time:
        Ignore feature rows with an event time before this.
    tuning:
        Plan knobs (:class:`PitTuning`); never change the result.

    Returns
    -------
    DataFrame
        The spine's columns followed by each source's output columns, in source order.

    Raises
    ------
    MissingColumnError, ColumnTypeError, ConfigurationError
        Before any Spark job, for a missing column, a wrong type, or output names that
        collide with each other or with spine columns.

    See Also
    --------
    seeknal_spark.offline.pit.planner.plan_join : how it runs (never changes the result).

    Examples
    --------
    Spend known at each prediction time, at most 5 days old; key ``b`` has no feature row:

    >>> from datetime import datetime, timedelta
    >>> feats = spark.createDataFrame(
    ...     [("a", datetime(2024, 1, 1), 1.0), ("a", datetime(2024, 1, 3), 3.0)],
    ...     "k string, event_time timestamp, spend double")
    >>> spine = spark.createDataFrame(
    ...     [("a", datetime(2024, 1, 2)), ("a", datetime(2024, 1, 9)), ("b", datetime(2024, 1, 2))],
    ...     "k string, prediction_time timestamp")
    >>> src = AsOfSource(feats, ("k",), "event_time", ("spend",), ttl=timedelta(days=5))
    >>> out = point_in_time_join(spine, [src])
    >>> sorted((r.k, r.prediction_time.day, r.spend) for r in out.collect())
    [('a', 2, 1.0), ('a', 9, None), ('b', 2, None)]
    """
    sources = list(sources)
    tuning = tuning or PitTuning()
    casts = validate(spine, sources, timestamp_col)
    if not sources:
        return spine
    spine_cols = list(spine.columns)
    ts_type = field_of(spine, timestamp_col, "the spine").dataType
    start_us = None if feature_start_time is None else utc_micros(feature_start_time)
    spine_time = utc_micros_column(F.col(f"`{timestamp_col}`"), ts_type)
    plan = plan_join(
        spine,
        sources,
        casts,
        spine_time=spine_time,
        inclusive=inclusive,
        start_us=start_us,
        tuning=tuning,
    )
    logger.info("point-in-time join plan:\n%s", plan.describe())
    if any(step.strategy != "join" for step in plan.passes):
        require_package_on_executors(spine.sparkSession)  # the merge kernel runs there
    return _finish(run_plan(spine, plan, spine_time, inclusive), spine_cols, sources)


def run_plan(spine: DataFrame, plan: PitPlan, spine_time: Column, inclusive: bool) -> DataFrame:
    """``spine`` with every pass of ``plan`` applied: the value columns (internal names)
    and matched flag of every table appended."""
    out = spine
    for step in plan.passes:
        if step.strategy == "join":
            out = join_pass(out, step.tables, spine_time=spine_time, inclusive=inclusive)
        else:
            out = merge_pass(
                out,
                step.tables,
                spine_time=spine_time,
                hot_keys=step.hot_keys,
                buckets=plan.buckets,
                inclusive=inclusive,
            )
    return out


def _finish(merged: DataFrame, spine_cols: list[str], sources: list[AsOfSource]) -> DataFrame:
    """Output names, and defaults where no feature row matched."""
    final = [F.col(f"`{c}`") for c in spine_cols]
    for s, src in enumerate(sources):
        ftypes = {f.name: f.dataType for f in src.df.schema.fields}
        for j, feature in enumerate(src.features):
            value = F.col(f"{P}s{s}_f{j}")
            if feature in src.defaults and src.defaults[feature] is not None:
                default = F.lit(src.defaults[feature]).cast(ftypes[feature])
                value = F.when(F.col(f"{P}s{s}_m"), value).otherwise(default)
            final.append(value.alias(src.output_name(feature)))
    return merged.select(*final)
