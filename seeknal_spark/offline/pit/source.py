"""What the point-in-time join reads: :class:`AsOfSource`, one feature table, and its hash."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from seeknal_spark.definitions.feature import ttl_limit

__all__ = ["AsOfSource", "feature_hash"]


def feature_hash(columns: Sequence[Column]) -> Column:
    """The last tie-breaker: a 64-bit hash of the feature values that cannot be ordered
    (arrays, maps, structs), compared after every other value (greatest wins).

    Examples
    --------
    >>> df = spark.createDataFrame([([1, 2],)], "xs array<int>")
    >>> df.select(feature_hash([df.xs]).alias("h")).dtypes
    [('h', 'bigint')]
    """
    return F.xxhash64(*columns, F.lit(0))


@dataclass(frozen=True)
class AsOfSource:
    """One feature table to join as of the spine time.

    Parameters
    ----------
    df:
        Feature rows: key columns, an event-time column and feature columns.
    keys:
        Key columns; the spine must have columns of the same names.
    event_time_col:
        When each row's values became true (timestamp, timestamp_ntz or date).
    features:
        Columns of ``df`` to bring over.
    output_names:
        ``{feature: output column name}``; features not listed keep their name.
    ttl:
        A feature row is usable only while ``event_time > spine_time - ttl``
        (``None`` or a "forever" value such as ``timedelta.max``: no limit).
    tie_break_cols:
        Orderable columns of ``df`` breaking ties on equal event time, greatest first
        (e.g. a created-time column, then ``_seeknal_write_time``). Nulls lose.
    defaults:
        ``{feature: value}`` used when no feature row matches.

    Examples
    --------
    >>> feats = spark.createDataFrame([("a", 1.0)], "k string, v double")
    >>> AsOfSource(feats, "k", "et", ["v"], output_names={"v": "v_out"}).output_name("v")
    'v_out'
    >>> AsOfSource(feats, (), "et", ("v",))
    Traceback (most recent call last):
    ...
    ValueError: AsOfSource needs at least one key column
    """

    df: DataFrame
    keys: tuple[str, ...]
    event_time_col: str
    features: tuple[str, ...]
    output_names: Mapping[str, str] = field(default_factory=dict)
    ttl: timedelta | None = None
    tie_break_cols: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("keys", "features", "tie_break_cols"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        if not self.keys:
            raise ValueError("AsOfSource needs at least one key column")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"AsOfSource lists a feature twice: {list(self.features)}")
        if self.ttl is not None:
            if not isinstance(self.ttl, timedelta):
                raise TypeError(f"ttl must be a datetime.timedelta, got {self.ttl!r}")
            if self.ttl <= timedelta(0):
                raise ValueError(f"ttl must be positive (or None for no limit), got {self.ttl}")
            object.__setattr__(self, "ttl", ttl_limit(self.ttl))  # timedelta.max: no limit
        unknown = set(self.output_names) - set(self.features)
        if unknown:
            raise ValueError(f"output_names names columns that are not features: {sorted(unknown)}")
        unknown = set(self.defaults) - set(self.features)
        if unknown:
            raise ValueError(f"defaults names columns that are not features: {sorted(unknown)}")

    def output_name(self, feature: str) -> str:
        """The output column name of ``feature``."""
        return self.output_names.get(feature, feature)
