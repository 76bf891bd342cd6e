"""Event groups: feature groups that store events and declare time-window aggregations.

A :class:`~seeknal_spark.store.feature_group.FeatureGroup` given ``aggregations=`` stores
*events* - its join keys, event time, created time (if any) and the columns its
aggregations read - through the same Delta write protocol as every group; its features
are the aggregation features (``amount_sum_7d``...), computed at read time by
:func:`seeknal_spark.offline.windows.window_aggregates`. The checks here run before any
Spark job: the declaration at construction, the events' schema before a write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from pyspark.sql import DataFrame

from seeknal_spark.definitions.aggregation import (
    EVERY_EVENT,
    Aggregation,
    aggregation_features,
    check_names,
)
from seeknal_spark.definitions.feature import Feature
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.store.compute import InputSource, Transform, check_output
from seeknal_spark.store.delta_protocol import WRITE_TIME_COL

__all__ = ["check_event_group", "event_columns", "event_output"]


def check_event_group(
    group: str,
    aggregations: Sequence[Aggregation],
    *,
    transform: Transform | None,
    inputs: Mapping[str, InputSource],
    features: Any,
    ttl: timedelta | None,
    reserved: Sequence[str],
) -> tuple[Aggregation, ...]:
    """Check an event group's declaration (no Spark); return its aggregations.

    Raises
    ------
    ConfigurationError
        No aggregation; ``features=`` or ``ttl=`` given (an event group's features are
        its aggregations, whose windows bound them); no transform and not exactly one
        input; two features of one name, or one named like a key or time column.
    TypeError
        An item that is not an :class:`~seeknal_spark.definitions.aggregation.Aggregation`.
    """
    listed = list(aggregations)
    if not listed:
        raise ConfigurationError(
            f"feature group {group!r}: aggregations is empty; declare at least one "
            "Aggregation, or omit it for a group of stored features"
        )
    for i, agg in enumerate(listed):
        if not isinstance(agg, Aggregation):
            raise TypeError(
                f"feature group {group!r}: aggregations[{i}] is {type(agg).__name__}, "
                "not an Aggregation"
            )
    if features is not None:
        raise ConfigurationError(
            f"feature group {group!r}: an event group's features are its aggregations; "
            "omit features= (the events' columns are the columns the aggregations read)"
        )
    if ttl is not None:
        raise ConfigurationError(
            f"feature group {group!r}: an event group has no ttl: each aggregation's "
            "window bounds the events it reads; omit ttl="
        )
    if transform is None and len(inputs) != 1:
        raise ConfigurationError(
            f"feature group {group!r}: without a transform the single input is stored as "
            f"the events, but the inputs are {sorted(inputs)}: give exactly one input, or a "
            "transform shaping them into events"
        )
    check_names(listed, [*reserved, WRITE_TIME_COL], what=f"feature group {group!r}")
    return tuple(listed)


def event_columns(aggregations: Sequence[Aggregation], reserved: Sequence[str]) -> list[str]:
    """The columns the aggregations read, in order of first use, without ``reserved``."""
    out: list[str] = []
    for agg in aggregations:
        if agg.column != EVERY_EVENT and agg.column not in out and agg.column not in reserved:
            out.append(agg.column)
    return out


def event_output(
    raw: DataFrame,
    group: str,
    aggregations: Sequence[Aggregation],
    required: Sequence[str],
    time_columns: Sequence[str],
) -> tuple[list[str], list[Feature]]:
    """Check the events a transform (or the single input) gives; return the event
    columns to store besides ``required`` and the group's aggregation features.

    Raises
    ------
    MissingColumnError, ColumnTypeError, SchemaError
        A key, time or aggregated column is absent, or of a wrong type; a repeated column.
    """
    check_output(raw, group, required, time_columns, [])
    features = aggregation_features(
        aggregations, raw.schema, what=f"the events of feature group {group!r}"
    )
    return event_columns(aggregations, required), features
