"""Lookups of event groups: time-window aggregates of the stored events at each spine time.

A :class:`~seeknal_spark.training.lookup.FeatureLookup` of an event group (a feature group
with ``aggregations=``) is answered by :func:`~seeknal_spark.offline.windows.
window_aggregates` over the group's stored events, read at the Delta version the
training manifest pins, exactly like every lookup. :func:`attach_windows` does it for the
lookups of one :class:`~seeknal_spark.training.historical.HistoricalFeatures` build:

1. The events read are cut, by a filter on the stored (UTC timestamp) event time that
   Delta's data skipping uses, to ``(min spine time - longest window, max spine time]``
   and to ``event_time >= feature_start_time`` when one is set: no window reaches further.
2. Each lookup's features are computed under their output names (prefix included), with
   the build's ``inclusive``: the value of window ``w`` at spine time ``t`` aggregates the
   events of the key with ``t - w < event_time <= t`` (``< t`` when not inclusive).
3. A lookup default fills a null aggregate (an empty window, or nulls only); counts are
   never null (0 for an empty window).

:func:`snapshot_spine` is the spine a snapshot (what an online table serves) uses at time
``T``: every key with an event in ``(T - longest window, T]``, at ``T``; a key with none
holds no value to serve, and reads the lookup's defaults (0 for counts) online.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from seeknal_spark._timestamps import utc_literal, utc_micros_column
from seeknal_spark.definitions.aggregation import Aggregation
from seeknal_spark.definitions.feature import FeatureGroupDefinition
from seeknal_spark.offline.windows import window_aggregates
from seeknal_spark.store.feature_store import WRITE_TIME_COL
from seeknal_spark.training.lookup import FeatureLookup

__all__ = ["WindowLookup", "attach_windows", "lookup_aggregations", "snapshot_spine"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FIRST = datetime.min.replace(tzinfo=timezone.utc)  # no lower bound within a window of it

#: ``(lookup with features resolved, the version's definition, its stored events read at
#: the pinned Delta version)``.
WindowLookup = tuple[FeatureLookup, FeatureGroupDefinition, DataFrame]


def lookup_aggregations(
    lookup: FeatureLookup, definition: FeatureGroupDefinition
) -> list[Aggregation]:
    """The aggregations of the lookup's features as the version recorded them, one per
    (column, function), named with the lookup's output names."""
    wanted = set(lookup.features or definition.feature_names)
    grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for feature in definition.features:
        if feature.name in wanted and feature.aggregation is not None:
            column, function, window = feature.aggregation
            grouped.setdefault((column, function), []).append(
                (window, lookup.output_name(feature.name))
            )
    return [
        Aggregation(column, function, [w for w, _ in items], name=[n for _, n in items])
        for (column, function), items in grouped.items()
    ]


def _events(
    table: DataFrame,
    event_time_col: str,
    after: datetime | None,
    until: datetime | None,
    start: datetime | None,
) -> DataFrame:
    """The stored events with ``after < event time <= until`` and ``>= start``; none at all
    when ``until`` is None (an empty spine)."""
    events = table.drop(WRITE_TIME_COL) if WRITE_TIME_COL in table.columns else table
    if until is None:
        return events.where(F.lit(False))
    time = F.col(event_time_col)  # stored as a UTC timestamp: literal bounds skip files
    condition: Column = time <= utc_literal(until)
    if after is not None:
        condition = condition & (time > utc_literal(after))
    if start is not None:
        condition = condition & (time >= utc_literal(start))
    return events.where(condition)


def _spine_span(spine: DataFrame, timestamp_col: str) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest spine times (one small aggregation job)."""
    micros = utc_micros_column(F.col(timestamp_col), spine.schema[timestamp_col].dataType)
    row = spine.agg(F.min(micros).alias("lo"), F.max(micros).alias("hi")).first()
    if row is None or row["lo"] is None:
        return None, None
    return _from_micros(int(row["lo"])), _from_micros(int(row["hi"]))


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def attach_windows(
    spine: DataFrame,
    lookups: Sequence[WindowLookup],
    *,
    timestamp_col: str,
    inclusive: bool,
    start: datetime | None,
    span: tuple[datetime | None, datetime | None] | None = None,
) -> DataFrame:
    """The spine with every event-group lookup's aggregation features (see the module
    docstring); one output row per spine row, the spine's columns kept.

    ``span`` is the spine's (earliest, latest) time when known (a snapshot's spine is at
    one time); else it is computed.

    Raises
    ------
    MissingColumnError, ColumnTypeError, ConfigurationError
        Before any Spark job: a key or column missing or of a wrong type, an output name
        that clashes with a spine column or another feature.
    """
    if not lookups:
        return spine
    earliest, latest = span if span is not None else _spine_span(spine, timestamp_col)
    out = spine
    for lookup, definition, table in lookups:
        aggregations = lookup_aggregations(lookup, definition)
        longest = max(a.max_window for a in aggregations)
        after = None if earliest is None or earliest - _FIRST <= longest else earliest - longest
        events = _events(table, definition.event_time_col, after, latest, start)
        out = window_aggregates(
            out,
            events,
            keys=definition.join_keys,
            spine_time_col=timestamp_col,
            event_time_col=definition.event_time_col,
            aggregations=aggregations,
            inclusive=inclusive,
        )
        defaults = {lookup.output_name(f): v for f, v in lookup.defaults.items()}
        types = {f.name: f.dtype for f in definition.features}
        filled = {
            lookup.output_name(f): F.coalesce(
                F.col(lookup.output_name(f)),
                F.lit(defaults[lookup.output_name(f)]).cast(types[f]),
            )
            for f in lookup.features or ()
            if defaults.get(lookup.output_name(f)) is not None
        }
        if filled:
            out = out.withColumns(filled)
    return out


def snapshot_spine(
    table: DataFrame,
    lookup: FeatureLookup,
    definition: FeatureGroupDefinition,
    moment: datetime,
    start: datetime | None,
    time_col: str,
) -> DataFrame:
    """Every key with an event in ``(moment - longest window, moment]`` (and at or after
    ``start``), with ``time_col`` = ``moment``: the spine of a snapshot at ``moment``."""
    longest = max(a.max_window for a in lookup_aggregations(lookup, definition))
    events = _events(table, definition.event_time_col, moment - longest, moment, start)
    keys = list(definition.join_keys)
    return events.select(*keys).distinct().withColumn(time_col, utc_literal(moment))
