"""The point-in-time (as-of) join that builds training data without leakage.

:func:`point_in_time_join` attaches to every row of a *spine* (entity keys and a prediction
time) the latest feature values known at that time, from one or more feature tables
(:class:`AsOfSource`). It is a pure DataFrame-API function: no session settings, no RDDs,
and nothing but a one-row statistic of the spine time goes to the driver.

How it runs (see :func:`point_in_time_join` for *what* it computes):

1. Feature rows are pruned to what can match: null keys/times dropped, rows after the
   last spine time dropped, rows older than ``feature_start_time`` (and, with a TTL, older
   than the first spine time minus the TTL) dropped, and - when the spine has few enough
   distinct keys - rows whose key is not in the spine dropped by a broadcast semi-join.
2. Hot keys (keys holding a large share of a sample of feature rows) are split into time
   windows, all other keys form one window each. For hot keys the last feature row of
   every earlier window is computed by a small aggregate and carried into the next
   windows as a *seed* row, so the answer stays exact while a hot key's history is
   spread over many tasks.
3. Spine rows, feature rows and seeds are unioned, shuffled once by (key, window), sorted
   within partitions by (key, window, time, side, tie-breakers) and resolved by a
   vectorised merge in ``mapInArrow``: each spine row takes the last feature row before
   it in that order (numpy, O(rows)), batch by batch with the last feature row carried
   between batches.
4. Sources that share the same key columns ride in the same shuffle; sources with other
   keys are joined one after another, every spine column carried through.

When no key is hot and the feature tables hold few rows per key (``PitTuning.plan``,
``join_max_rows_per_key``; one small counting job decides), a plain key join on
``event_time <= spine time`` ranked per spine row is cheaper than sorting every feature
row, and is used instead; both plans give the same rows (the tests check both).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    LongType,
    MapType,
    NumericType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from seeknal_spark._timestamps import utc_micros, utc_micros_column
from seeknal_spark.errors import ColumnTypeError, ConfigurationError, MissingColumnError

__all__ = [
    "AsOfSource",
    "PitTuning",
    "feature_hash",
    "point_in_time_join",
    "utc_micros_column",
]

logger = logging.getLogger(__name__)

_P = "__pit_"  # prefix of every internal column
_T = f"{_P}t"  # UTC microseconds
_B = f"{_P}b"  # time window of the row (0 for keys that are not split)
_ORD = f"{_P}ord"  # side order at equal time: features before spine when inclusive
_SRC = f"{_P}src"  # -1 for spine rows, the source index for feature rows
_NW = f"{_P}nw"  # number of time windows of a hot key (null for other keys)
_MICROS_PER_DAY = 86_400_000_000


def feature_hash(columns: Sequence[Column]) -> Column:
    """The final tie-breaker: a 64-bit hash of a row's feature values (greatest wins)."""
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
        A feature row is usable only while ``event_time > spine_time - ttl``.
    tie_break_cols:
        Orderable columns of ``df`` breaking ties on equal event time, greatest first
        (e.g. a created-time column, then ``_seeknal_write_time``). Nulls lose.
    defaults:
        ``{feature: value}`` used when no feature row matches.
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
        unknown = set(self.output_names) - set(self.features)
        if unknown:
            raise ValueError(f"output_names names columns that are not features: {sorted(unknown)}")
        unknown = set(self.defaults) - set(self.features)
        if unknown:
            raise ValueError(f"defaults names columns that are not features: {sorted(unknown)}")

    def output_name(self, feature: str) -> str:
        """The output column name of ``feature``."""
        return self.output_names.get(feature, feature)


@dataclass(frozen=True)
class PitTuning:
    """Knobs of the join plan; they never change the result, only how it is computed.

    Parameters
    ----------
    sample_fraction:
        Fraction of feature rows sampled to find hot keys.
    hot_key_share:
        A key holding more than this share of the sampled rows is split into time windows.
        None: ``1 / (2 * shuffle partitions)``. ``0.0`` splits every sampled key (tests).
    max_hot_keys:
        At most this many keys are split (the hot-key table is broadcast).
    max_windows:
        At most this many time windows per hot key. None: ``4 * shuffle partitions``.
    hot_key_windows:
        Split every hot key into exactly this many windows (for tests); None: from its share.
    plan:
        ``"merge"``: the windowed sort-merge described in the module docstring.
        ``"join"``: a key join on ``event_time <= spine time`` ranked per spine row, cheaper
        when keys have few feature rows each and none is hot, ruinous on hot keys.
        ``"auto"``: the join when no key is hot and the feature tables hold at most
        ``join_max_rows_per_key`` rows per distinct key (one small job to count), else merge.
    prune_keys_max:
        Feature rows are semi-joined to the spine's keys (broadcast) when the spine has at
        most this many distinct keys (estimated); 0 disables key pruning.
    """

    sample_fraction: float = 0.02
    hot_key_share: float | None = None
    max_hot_keys: int = 64
    max_windows: int | None = None
    hot_key_windows: int | None = None
    prune_keys_max: int = 200_000
    plan: str = "auto"
    join_max_rows_per_key: float = 32.0

    def __post_init__(self) -> None:
        if not 0.0 < self.sample_fraction <= 1.0:
            raise ValueError(f"sample_fraction must be in (0, 1], got {self.sample_fraction}")
        if self.hot_key_share is not None and not 0.0 <= self.hot_key_share <= 1.0:
            raise ValueError(f"hot_key_share must be in [0, 1], got {self.hot_key_share}")
        if self.max_hot_keys < 0 or self.prune_keys_max < 0:
            raise ValueError("max_hot_keys and prune_keys_max must be >= 0")
        if self.plan not in ("auto", "merge", "join"):
            raise ValueError(f"plan must be 'auto', 'merge' or 'join', got {self.plan!r}")
        for name in ("max_windows", "hot_key_windows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


def _is_time(dtype: DataType) -> bool:
    return isinstance(dtype, (TimestampType, TimestampNTZType, DateType))


def _orderable(dtype: DataType) -> bool:
    if isinstance(dtype, (MapType,)):
        return False
    if isinstance(dtype, ArrayType):
        return _orderable(dtype.elementType)
    if isinstance(dtype, StructType):
        return all(_orderable(f.dataType) for f in dtype.fields)
    return True


def _field(df: DataFrame, name: str, what: str) -> StructField:
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


def _validate(
    spine: DataFrame, sources: Sequence[AsOfSource], timestamp_col: str
) -> list[dict[str, DataType]]:
    """Schema-only checks; returns, per source, the spine key casts needed."""
    if any(c.startswith(_P) for c in spine.columns):
        raise ConfigurationError(f"spine columns may not start with {_P!r}: {spine.columns}")
    ts = _field(spine, timestamp_col, "the spine")
    if not _is_time(ts.dataType):
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
            sf = _field(spine, key, "the spine")
            ff = _field(src.df, key, what)
            target = _key_cast(sf.dataType, ff.dataType, key)
            if target is not None:
                cast[key] = target
        casts.append(cast)
        et = _field(src.df, src.event_time_col, what)
        if not _is_time(et.dataType):
            raise ColumnTypeError(
                f"event time column {src.event_time_col!r} of {what} is "
                f"{et.dataType.simpleString()}: it must be a timestamp, timestamp_ntz or date"
            )
        for col in src.tie_break_cols:
            tf = _field(src.df, col, what)
            if not _orderable(tf.dataType):
                raise ColumnTypeError(
                    f"tie-break column {col!r} of {what} is {tf.dataType.simpleString()}, "
                    "which cannot be ordered: use a timestamp or number"
                )
        for feat in src.features:
            _field(src.df, feat, what)
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
    4. **Ties.** Rows with equal event time are ordered by ``tie_break_cols`` descending
       (nulls lowest), then by a hash of the feature values, then by the feature values
       themselves; the greatest wins. There is never more than one output row per spine row.
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

    Examples
    --------
    >>> src = AsOfSource(features_df, ("customer_id",), "event_time", ("spend",),
    ...                  ttl=timedelta(days=30))                        # doctest: +SKIP
    >>> point_in_time_join(spine_df, [src])                          # doctest: +SKIP
    """
    sources = list(sources)
    tuning = tuning or PitTuning()
    casts = _validate(spine, sources, timestamp_col)
    if not sources:
        return spine
    spine_cols = list(spine.columns)
    ts_type = _field(spine, timestamp_col, "the spine").dataType
    start_us = None if feature_start_time is None else utc_micros(feature_start_time)

    # passes: sources with the same key columns (and key casts) share one shuffle
    passes: list[list[int]] = []
    for i, src in enumerate(sources):
        for group in passes:
            first = sources[group[0]]
            if first.keys == src.keys and casts[group[0]] == casts[i]:
                group.append(i)
                break
        else:
            passes.append([i])

    # the one statistic brought to the driver: spine time range (+ distinct-key estimates)
    t_col = utc_micros_column(F.col(timestamp_col), ts_type)
    stats_exprs = [F.min(t_col).alias("tmin"), F.max(t_col).alias("tmax")]
    for n, group in enumerate(passes):
        keys = sources[group[0]].keys
        stats_exprs.append(
            F.approx_count_distinct(F.struct(*[F.col(k) for k in keys])).alias(f"nk{n}")
        )
    stats = spine.agg(*stats_exprs).first()
    assert stats is not None  # an aggregate always has a row
    tmin = None if stats["tmin"] is None else int(stats["tmin"])
    tmax = None if stats["tmax"] is None else int(stats["tmax"])
    logger.debug("point-in-time join: spine time range %s..%s, %d passes", tmin, tmax, len(passes))

    shuffle_parts = int(spine.sparkSession.conf.get("spark.sql.shuffle.partitions") or "8")
    out = spine
    for n, group in enumerate(passes):
        out = _one_pass(
            out,
            [sources[i] for i in group],
            casts=casts[group[0]],
            timestamp_col=timestamp_col,
            ts_type=ts_type,
            inclusive=inclusive,
            start_us=start_us,
            tmin=tmin,
            tmax=tmax,
            n_keys_estimate=int(stats[f"nk{n}"] or 0),
            shuffle_parts=shuffle_parts,
            tuning=tuning,
        )
    final = list(spine_cols)
    for src in sources:
        final.extend(src.output_name(f) for f in src.features)
    return out.select(*[F.col(f"`{c}`") for c in final])


def _one_pass(
    spine: DataFrame,
    sources: list[AsOfSource],
    *,
    casts: dict[str, DataType],
    timestamp_col: str,
    ts_type: DataType,
    inclusive: bool,
    start_us: int | None,
    tmin: int | None,
    tmax: int | None,
    n_keys_estimate: int,
    shuffle_parts: int,
    tuning: PitTuning,
) -> DataFrame:
    keys = sources[0].keys
    kcols = [f"{_P}k{j}" for j in range(len(keys))]
    spine_cols = list(spine.columns)

    # -- feature rows, pruned, in one shape per source ---------------------------------------
    feats: list[DataFrame] = []
    for s, src in enumerate(sources):
        et_type = _field(src.df, src.event_time_col, "feature table").dataType
        t = utc_micros_column(F.col(f"`{src.event_time_col}`"), et_type)
        sel = [F.col(f"`{k}`").alias(kc) for k, kc in zip(keys, kcols, strict=True)]
        sel += [t.alias(_T), F.lit(s).alias(_SRC)]
        sel += [F.col(f"`{c}`").alias(f"{_P}s{s}_tb{j}") for j, c in enumerate(src.tie_break_cols)]
        fcols = [F.col(f"`{c}`") for c in src.features]
        sel.append(feature_hash(fcols).alias(f"{_P}s{s}_h"))
        sel += [c.alias(f"{_P}s{s}_f{j}") for j, c in enumerate(fcols)]
        fd = src.df.select(*sel)
        cond = F.col(_T).isNotNull()
        for kc in kcols:
            cond = cond & F.col(kc).isNotNull()
        if tmax is None:
            cond = F.lit(False)
        else:
            cond = cond & (F.col(_T) <= F.lit(tmax))
            if src.ttl is not None and tmin is not None:
                cond = cond & (F.col(_T) > F.lit(tmin - _ttl_us(src.ttl)))
        if start_us is not None:
            cond = cond & (F.col(_T) >= F.lit(start_us))
        feats.append(fd.where(cond))
    feat = feats[0]
    for fd in feats[1:]:
        feat = feat.unionByName(fd, allowMissingColumns=True)

    # -- spine rows ----------------------------------------------------------------------
    sp_sel = [F.col(f"`{c}`") for c in spine_cols]
    for k, kc in zip(keys, kcols, strict=True):
        col = F.col(f"`{k}`")
        sp_sel.append((col.cast(casts[k]) if k in casts else col).alias(kc))
    sp_sel += [
        utc_micros_column(F.col(f"`{timestamp_col}`"), ts_type).alias(_T),
        F.lit(-1).alias(_SRC),
    ]
    sp = spine.select(*sp_sel)

    # -- hot keys (found on a sample, before key pruning) -----------------------------------
    hot_rows: list[tuple[Any, ...]] = []
    if tmin is not None and tmax is not None and tuning.max_hot_keys > 0:
        hot_rows = _hot_keys(feat, kcols, shuffle_parts, tuning)
    use_join = tuning.plan == "join" or (
        tuning.plan == "auto"
        and not hot_rows
        and _rows_per_key(feat, kcols) <= tuning.join_max_rows_per_key
    )
    if use_join:
        logger.info("point-in-time join: key join plan (few rows per key, no hot key)")
        merged = _join_plan(sp, feats, sources, kcols, inclusive)
        return _finish(merged, spine_cols, sources)
    if tmin is None or tmax is None or tmax <= tmin:
        hot_rows = []  # one spine time: no windows to split into

    # -- key pruning: broadcast semi-join when the spine has few distinct keys -------------
    if 0 < n_keys_estimate <= tuning.prune_keys_max:
        not_null = F.lit(True)
        for kc in kcols:
            not_null = not_null & F.col(kc).isNotNull()
        spine_keys = sp.select(*kcols).where(not_null).distinct()
        feat = feat.join(F.broadcast(spine_keys), kcols, "left_semi")

    # -- time windows of hot keys, and the seeds carried between them ------------------------
    if hot_rows:
        assert tmin is not None and tmax is not None
        key_fields = [feat.schema[kc] for kc in kcols]
        hot = spine.sparkSession.createDataFrame(
            hot_rows,
            StructType([*key_fields, StructField(_NW, LongType(), False)]),
        )
        logger.info("point-in-time join: %d hot keys split into time windows", len(hot_rows))
        span = tmax - tmin + 1
        width = F.ceil(F.lit(span) / F.col(_NW)).cast("long")  # window width per hot key
        raw_b = F.floor((F.col(_T) - F.lit(tmin)) / width).cast("long")
        bucket = (
            F.when(F.col(_NW).isNull() | F.col(_T).isNull(), F.lit(0).cast("long"))
            .when(F.col(_T) < F.lit(tmin), F.lit(-1).cast("long"))
            .otherwise(F.least(raw_b, F.col(_NW) - 1))
        )
        feat = feat.join(F.broadcast(hot), kcols, "left").withColumn(_B, bucket)
        sp = sp.join(F.broadcast(hot), kcols, "left").withColumn(_B, bucket).drop(_NW)
        seeds = _seeds(feat, hot, sources, kcols)
        feat = feat.where(F.col(_B) >= 0).drop(_NW)
        feat = feat.unionByName(seeds, allowMissingColumns=True)
    else:
        feat = feat.withColumn(_B, F.lit(0).cast("long"))
        sp = sp.withColumn(_B, F.lit(0).cast("long"))

    # inclusive: features sort before the spine row at equal time, so they are visible
    f_ord, s_ord = (0, 1) if inclusive else (1, 0)
    feat = feat.withColumn(_ORD, F.lit(f_ord))
    sp = sp.withColumn(_ORD, F.lit(s_ord))
    union = sp.unionByName(feat, allowMissingColumns=True)

    order = [*kcols, _B, _T, _ORD, _SRC]
    for s, src in enumerate(sources):
        order += [f"{_P}s{s}_tb{j}" for j in range(len(src.tie_break_cols))]
        order.append(f"{_P}s{s}_h")
        ftypes = {f.name: f.dataType for f in src.df.schema.fields}
        order += [f"{_P}s{s}_f{j}" for j, c in enumerate(src.features) if _orderable(ftypes[c])]
    union = union.repartition(*[F.col(c) for c in (*kcols, _B)]).sortWithinPartitions(
        *[F.col(c).asc_nulls_first() for c in order]
    )

    # -- the merge ---------------------------------------------------------------------------
    out_fields = list(spine.schema.fields)
    feat_names: list[list[str]] = []
    for s, src in enumerate(sources):
        ftypes = {f.name: f.dataType for f in src.df.schema.fields}
        names = [f"{_P}s{s}_f{j}" for j in range(len(src.features))]
        feat_names.append(names)
        out_fields += [
            StructField(n, ftypes[c], True) for n, c in zip(names, src.features, strict=True)
        ]
        out_fields.append(StructField(f"{_P}s{s}_m", BooleanType(), True))
    merge = _Merge(
        spine_cols=spine_cols,
        key_cols=[*kcols, _B],
        feat_names=feat_names,
        ttl_us=[None if s.ttl is None else _ttl_us(s.ttl) for s in sources],
    )
    merged = union.mapInArrow(merge, StructType(out_fields))

    return _finish(merged, spine_cols, sources)


def _finish(merged: DataFrame, spine_cols: list[str], sources: list[AsOfSource]) -> DataFrame:
    """Output names, and defaults where no feature row matched."""
    final = [F.col(f"`{c}`") for c in spine_cols]
    for s, src in enumerate(sources):
        ftypes = {f.name: f.dataType for f in src.df.schema.fields}
        for j, feature in enumerate(src.features):
            value = F.col(f"{_P}s{s}_f{j}")
            if feature in src.defaults and src.defaults[feature] is not None:
                default = F.lit(src.defaults[feature]).cast(ftypes[feature])
                value = F.when(F.col(f"{_P}s{s}_m"), value).otherwise(default)
            final.append(value.alias(src.output_name(feature)))
    return merged.select(*final)


def _rows_per_key(feat: DataFrame, kcols: list[str]) -> float:
    """The largest (feature rows / distinct keys) over the sources of a pass (one job)."""
    stats = (
        feat.groupBy(_SRC)
        .agg(F.count("*").alias("n"), F.approx_count_distinct(F.struct(*kcols)).alias("k"))
        .collect()
    )
    return max((r["n"] / max(r["k"], 1) for r in stats), default=0.0)


def _join_plan(
    sp: DataFrame,
    feats: list[DataFrame],
    sources: list[AsOfSource],
    kcols: list[str],
    inclusive: bool,
) -> DataFrame:
    """Per source: spine LEFT JOIN features ON keys AND time bounds, best row per spine row.

    A row id from ``monotonically_increasing_id`` only needs to be unique: nothing is
    joined back on it, so recomputation cannot mismatch rows.
    """
    rid = f"{_P}rid"
    cur = sp.withColumn(rid, F.monotonically_increasing_id())
    for s, (src, fd) in enumerate(zip(sources, feats, strict=True)):
        tbs = [f"{_P}s{s}_tb{j}" for j in range(len(src.tie_break_cols))]
        fcols = [f"{_P}s{s}_f{j}" for j in range(len(src.features))]
        ft, h = f"{_P}ft", f"{_P}s{s}_h"
        right = fd.select(
            *[F.col(kc).alias(f"{kc}_r") for kc in kcols], F.col(_T).alias(ft), *tbs, h, *fcols
        )
        cond = (right[ft] <= cur[_T]) if inclusive else (right[ft] < cur[_T])
        for kc in kcols:
            cond = cond & (cur[kc] == right[f"{kc}_r"])
        if src.ttl is not None:
            cond = cond & (right[ft] > cur[_T] - F.lit(_ttl_us(src.ttl)))
        ftypes = {f.name: f.dataType for f in src.df.schema.fields}
        order = [F.col(ft).desc_nulls_last()]
        order += [F.col(c).desc_nulls_last() for c in tbs]
        order.append(F.col(h).desc_nulls_last())
        order += [
            F.col(c).desc_nulls_last()
            for c, name in zip(fcols, src.features, strict=True)
            if _orderable(ftypes[name])
        ]
        rank = F.row_number().over(Window.partitionBy(rid).orderBy(*order))
        cur = (
            cur.join(right, cond, "left")
            .withColumn(f"{_P}rn", rank)
            .where(F.col(f"{_P}rn") == 1)
            .withColumn(f"{_P}s{s}_m", F.col(ft).isNotNull())
            .drop(f"{_P}rn", ft, h, *tbs, *[f"{kc}_r" for kc in kcols])
        )
    return cur


def _hot_keys(
    feat: DataFrame, kcols: list[str], shuffle_parts: int, tuning: PitTuning
) -> list[tuple[Any, ...]]:
    """Keys holding more than ``hot_key_share`` of a sample of feature rows, with the
    number of time windows each is split into (one small job; at most ``max_hot_keys``
    rows reach the driver)."""
    parts = max(shuffle_parts, 1)
    share = tuning.hot_key_share if tuning.hot_key_share is not None else 1.0 / (2 * parts)
    max_w = tuning.max_windows or 4 * parts
    sample = feat.select(*kcols)
    if tuning.sample_fraction < 1.0:
        sample = sample.sample(fraction=tuning.sample_fraction, seed=17)
    counts = sample.groupBy(*kcols).count()
    total = counts.agg(F.sum("count").alias("__total"))
    top = (
        counts.crossJoin(total)
        .where(F.col("count") > F.col("__total") * F.lit(share))
        .orderBy(F.col("count").desc(), *kcols)
        .limit(tuning.max_hot_keys)
        .collect()
    )
    rows = []
    for r in top:
        fraction = r["count"] / r["__total"]
        windows = tuning.hot_key_windows or min(max_w, max(2, math.ceil(fraction * 2 * parts)))
        rows.append((*[r[kc] for kc in kcols], windows))
    return rows


def _ttl_us(ttl: timedelta) -> int:
    return ttl // timedelta(microseconds=1)


def _seeds(
    feat: DataFrame, hot: DataFrame, sources: list[AsOfSource], kcols: list[str]
) -> DataFrame:
    """For each hot key and window b, per source, the best feature row of windows < b."""
    out: DataFrame | None = None
    for s, src in enumerate(sources):
        tbs = [f"{_P}s{s}_tb{j}" for j in range(len(src.tie_break_cols))]
        fs = [f"{_P}s{s}_f{j}" for j in range(len(src.features))]
        rank = F.struct(_T, *tbs, f"{_P}s{s}_h")
        payload = F.struct(_T, *tbs, f"{_P}s{s}_h", *fs)
        tails = (
            feat.where((F.col(_SRC) == s) & F.col(_NW).isNotNull() & (F.col(_B) < F.col(_NW) - 1))
            .groupBy(*kcols, _B)
            .agg(F.max_by(payload, rank).alias("p"), F.max(rank).alias("r"))
        )
        targets = hot.select(
            *kcols, F.explode(F.sequence(F.lit(0).cast("long"), F.col(_NW) - 1)).alias("__tb")
        )
        seeds = (
            targets.join(tails, kcols)
            .where(F.col(_B) < F.col("__tb"))
            .groupBy(*kcols, "__tb")
            .agg(F.max_by("p", "r").alias("p"))
            .select(*kcols, F.col("__tb").alias(_B), F.lit(s).alias(_SRC), "p.*")
        )
        out = seeds if out is None else out.unionByName(seeds, allowMissingColumns=True)
    assert out is not None
    return out


class _Merge:
    """The per-partition as-of merge run by ``mapInArrow`` (picklable, no Spark objects).

    Input rows arrive sorted by (keys, window, time, side, source, tie-breakers): for
    each spine row, the matching feature row of source ``s`` is the last row of source
    ``s`` before it with the same keys and window, if within the TTL.
    """

    def __init__(
        self,
        spine_cols: list[str],
        key_cols: list[str],
        feat_names: list[list[str]],
        ttl_us: list[int | None],
    ) -> None:
        self.spine_cols = spine_cols
        self.key_cols = key_cols
        self.feat_names = feat_names
        self.ttl_us = ttl_us

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        n_src = len(self.feat_names)
        carry: list[pa.RecordBatch | None] = [None] * n_src
        for batch in batches:
            if batch.num_rows == 0:
                continue
            carried = [c for c in carry if c is not None]
            rb = pa.concat_batches([*carried, batch]) if carried else batch
            c0 = len(carried)
            n = rb.num_rows
            src = np.asarray(rb.column(_SRC).to_numpy(zero_copy_only=False), dtype=np.int64)
            tcol = rb.column(_T)
            t_valid = np.asarray(tcol.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            t = np.asarray(pc.fill_null(tcol, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            group = self._groups(rb, c0)
            is_spine = src == -1
            pos = np.arange(n, dtype=np.int64)
            keep = pa.array(is_spine)
            out_cols: list[pa.Array] = [rb.column(c).filter(keep) for c in self.spine_cols]
            for s in range(n_src):
                last = np.maximum.accumulate(np.where(src == s, pos, -1))
                ok = is_spine & t_valid & (last >= 0)
                safe = np.where(last >= 0, last, 0)
                ok &= group[safe] == group
                ok &= t[safe] <= t
                ttl = self.ttl_us[s]
                if ttl is not None:
                    ok &= (t - t[safe]) < ttl
                idx = pa.array(safe[is_spine], type=pa.int64(), mask=~ok[is_spine])
                for name in self.feat_names[s]:
                    out_cols.append(pc.take(rb.column(name), idx))
                out_cols.append(pa.array(ok[is_spine]))
                rows = np.nonzero(src == s)[0]
                if rows.size:
                    carry[s] = rb.slice(int(rows[-1]), 1)
            if int(is_spine.sum()):
                names = list(self.spine_cols)
                for s in range(n_src):
                    names += self.feat_names[s] + [f"{_P}s{s}_m"]
                yield pa.RecordBatch.from_arrays(out_cols, names=names)

    def _groups(self, rb: pa.RecordBatch, c0: int) -> np.ndarray:
        """A group id per row: equal ids = equal keys and window (carried rows first)."""
        n = rb.num_rows
        change = np.zeros(n - c0, dtype=bool)
        for name in self.key_cols:
            col = rb.column(name).slice(c0)
            if len(col) > 1:
                ne = pc.fill_null(pc.not_equal(col.slice(1), col.slice(0, len(col) - 1)), True)
                change[1:] |= np.asarray(ne.to_numpy(zero_copy_only=False), dtype=bool)
            nulls = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            change |= nulls  # a null key never matches a feature row
        group = np.empty(n, dtype=np.int64)
        group[c0:] = np.cumsum(change)
        for j in range(c0):
            same = all(
                rb.column(name)[j].as_py() == rb.column(name)[c0].as_py()
                and rb.column(name)[c0].is_valid
                for name in self.key_cols
            )
            group[j] = group[c0] if same else -1 - j
        return group
