"""The point-in-time (as-of) join that builds training data without leakage.

:func:`point_in_time_join` attaches to every row of a *spine* (entity keys and a prediction
time) the latest feature values known at that time, from one or more feature tables
(:class:`AsOfSource`). Its docstring states *what* it computes as numbered steps; *how* is
in :mod:`seeknal_spark.offline.pit.planner` (feature rows pruned per spine key before any shuffle,
hash buckets of keys, hot keys split into time windows with lead-ins, one cogrouped
sort-and-scan merge per set of key columns) and :mod:`seeknal_spark.offline.pit.kernel` (the
merge of one group).

It is a pure DataFrame-API function: no session settings, no RDDs. Two small jobs run side
by side before the join itself: the spine's time range and distinct-key estimate (one row
to the driver), and a sample of the feature keys and event times to find hot keys (at most
``PitTuning.sample_rows`` rows per feature table reach the driver, as Arrow).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DateType,
    NumericType,
    StringType,
    StructField,
    TimestampNTZType,
    TimestampType,
)

from seeknal_spark._timestamps import utc_micros, utc_micros_column
from seeknal_spark.errors import ColumnTypeError, ConfigurationError, MissingColumnError
from seeknal_spark.offline.pit.planner import (
    HASH_COL,
    T_COL,
    HotKey,
    P,
    PitTuning,
    SourcePlan,
    hot_tables,
    join_pass,
    merge_pass,
    read_hot_keys,
    sample_queries,
    sortable,
    window_plan,
)

__all__ = [
    "AsOfSource",
    "PitTuning",
    "feature_hash",
    "point_in_time_join",
    "utc_micros_column",
]

logger = logging.getLogger(__name__)

_P = P
_LO = f"{P}slo"  # first spine time of a key
_HI = f"{P}shi"  # last spine time of a key


def feature_hash(columns: Sequence[Column]) -> Column:
    """The last tie-breaker: a 64-bit hash of the feature values that cannot be ordered
    (arrays, maps, structs), compared after every other value (greatest wins)."""
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


def _is_time(dtype: DataType) -> bool:
    return isinstance(dtype, (TimestampType, TimestampNTZType, DateType))


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
            if not sortable(tf.dataType):
                raise ColumnTypeError(
                    f"tie-break column {col!r} of {what} is {tf.dataType.simpleString()}, "
                    "which the join cannot order: use a timestamp, number or string"
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
    spine_time = utc_micros_column(F.col(f"`{timestamp_col}`"), ts_type)

    # two small jobs: the spine's time range and, per key set, an estimate of its
    # distinct keys (one row to the driver); a sample of the feature keys to find hot
    # keys (at most sample_rows rows per table, as Arrow)
    key_sets = sorted({src.keys for src in sources})
    stats_exprs = [F.min(spine_time).alias("tmin"), F.max(spine_time).alias("tmax")]
    for n, keys in enumerate(key_sets):
        distinct = F.approx_count_distinct(F.struct(*[F.col(f"`{k}`") for k in keys]))
        stats_exprs.append(distinct.alias(f"nk{n}"))
    queries = []
    if tuning.max_hot_keys > 0:
        frames = [(s, _key_times(src, start_us)) for s, src in enumerate(sources)]
        queries = sample_queries(frames, tuning)
    with ThreadPoolExecutor(max_workers=1 + len(queries)) as pool:  # run side by side
        stats_job = pool.submit(spine.agg(*stats_exprs).collect)
        sample_jobs = [pool.submit(query.toArrow) for query in queries]
        rows = stats_job.result()
        samples = [job.result() for job in sample_jobs]
    stats = rows[0]
    tmin = None if stats["tmin"] is None else int(stats["tmin"])
    tmax = None if stats["tmax"] is None else int(stats["tmax"])
    n_keys = {keys: int(stats[f"nk{n}"] or 0) for n, keys in enumerate(key_sets)}
    logger.debug("point-in-time join: spine time range %s..%s", tmin, tmax)

    plans = [
        _source_plan(s, src, casts[s], start_us=start_us, tmin=tmin, tmax=tmax)
        for s, src in enumerate(sources)
    ]
    shuffle_parts = int(spine.sparkSession.conf.get("spark.sql.shuffle.partitions") or "8")

    def usable(s: int, t: int) -> bool:  # the pruning of _source_plan, for one time
        ttl = sources[s].ttl
        if tmax is None or tmin is None or t > tmax:
            return False
        return ttl is None or t > tmin - _ttl_us(ttl)

    sampled = read_hot_keys(samples, usable, tuning)
    buckets = tuning.buckets or max(8, 4 * shuffle_parts)

    # passes: tables with the same key columns and key types are merged together, sharing
    # the time windows of their hot keys; when they cannot share them, every table with a
    # hot key is merged in a pass of its own
    by_keys: dict[tuple[Any, ...], list[SourcePlan]] = {}
    for plan in plans:
        types = tuple(plan.feats.schema[c].dataType.json() for c in plan.key_cols)
        by_keys.setdefault((plan.keys, types), []).append(plan)
    passes: list[tuple[tuple[str, ...], bool, list[SourcePlan], list[HotKey]]] = []
    for (keys, _), unpruned in by_keys.items():
        pruned = 0 < n_keys[keys] <= tuning.prune_keys_max
        tables = unpruned
        if pruned:  # one spine-key table per key set, shared by its passes
            ranges = _spine_key_ranges(spine, unpruned[0], spine_time)
            tables = [_prune_to_spine(plan, ranges, inclusive) for plan in unpruned]
        shared = window_plan([p.index for p in tables], sampled, shuffle_parts, tuning)
        if shared is not None:
            passes.append((keys, pruned, tables, shared))
            continue
        alone = hot_tables([p.index for p in tables], sampled, shuffle_parts, tuning)
        rest = [p for p in tables if p.index not in alone]
        if rest:
            passes.append((keys, pruned, rest, []))
        for p in tables:
            if p.index in alone:
                own = window_plan([p.index], sampled, shuffle_parts, tuning) or []
                passes.append((keys, pruned, [p], own))
    out = spine
    for keys, pruned, group, hot_keys in passes:
        if _key_join_plan(tuning, spine, keys, pruned=pruned, hot=bool(hot_keys)):
            logger.info("point-in-time join: key-join plan for %d table(s)", len(group))
            out = join_pass(out, group, spine_time=spine_time, inclusive=inclusive)
            continue
        out = merge_pass(
            out,
            group,
            spine_time=spine_time,
            hot_keys=hot_keys,
            buckets=buckets,
            inclusive=inclusive,
        )
    return _finish(out, spine_cols, sources)


def _key_join_plan(
    tuning: PitTuning, spine: DataFrame, keys: tuple[str, ...], *, pruned: bool, hot: bool
) -> bool:
    """Whether a pass uses the key join rather than the merge (``PitTuning.plan``).

    ``"auto"`` takes the merge when the feature rows were pruned per key (fewer rows
    reach the merge than the key join would pair: measured faster) or a table has a hot
    key; otherwise it runs one small job for the most spine rows of one key and takes the
    key join when that is at most ``join_max_spine_rows``.
    """
    if tuning.plan != "auto":
        return tuning.plan == "join"
    if pruned or hot:
        return False
    per_key = spine.groupBy(*[F.col(f"`{k}`") for k in keys]).count()
    most = per_key.agg(F.max("count")).collect()[0][0]
    return int(most or 0) <= tuning.join_max_spine_rows


def _key_times(src: AsOfSource, start_us: int | None) -> DataFrame:
    """A table's key columns (``__pit_k0``...) and UTC event times, non-null, from
    ``feature_start_time`` on: what the hot-key sample reads."""
    et_type = _field(src.df, src.event_time_col, "feature table").dataType
    t = utc_micros_column(F.col(f"`{src.event_time_col}`"), et_type)
    keys = [F.col(f"`{k}`").alias(f"{_P}k{j}") for j, k in enumerate(src.keys)]
    frame = src.df.select(*keys, t.alias(T_COL))
    return frame.where(F.col(T_COL).isNotNull() & _present(len(src.keys), start_us))


def _present(n_keys: int, start_us: int | None) -> Column:
    """Rows whose key columns (``__pit_k0``...) are all set, from ``start_us`` on (if given)."""
    cond = F.lit(True)
    for j in range(n_keys):
        cond = cond & F.col(f"{_P}k{j}").isNotNull()
    if start_us is not None:
        cond = cond & (F.col(T_COL) >= F.lit(start_us))
    return cond


def _source_plan(
    s: int,
    src: AsOfSource,
    casts: dict[str, DataType],
    *,
    start_us: int | None,
    tmin: int | None,
    tmax: int | None,
) -> SourcePlan:
    """Source ``s``'s feature rows in the internal shape, pruned to what can match."""
    kcols = tuple(f"{_P}k{j}" for j in range(len(src.keys)))
    ties = tuple(f"{_P}s{s}_tb{j}" for j in range(len(src.tie_break_cols)))
    values = tuple(f"{_P}s{s}_f{j}" for j in range(len(src.features)))
    ftypes = {f.name: f.dataType for f in src.df.schema.fields}
    et_type = ftypes[src.event_time_col]
    t = utc_micros_column(F.col(f"`{src.event_time_col}`"), et_type)
    fcols = [F.col(f"`{c}`") for c in src.features]
    sel = [F.col(f"`{k}`").alias(kc) for k, kc in zip(src.keys, kcols, strict=True)]
    sel.append(t.alias(T_COL))
    sel += [F.col(f"`{c}`").alias(n) for c, n in zip(src.tie_break_cols, ties, strict=True)]
    unordered = [F.col(f"`{c}`") for c in src.features if not sortable(ftypes[c])]
    if unordered:
        sel.append(feature_hash(unordered).alias(HASH_COL))
    sel += [c.alias(n) for c, n in zip(fcols, values, strict=True)]
    cond = F.col(T_COL).isNotNull() & _present(len(kcols), start_us)
    if tmax is None:
        cond = F.lit(False)  # no spine row has a time: nothing can match
    else:
        cond = cond & (F.col(T_COL) <= F.lit(tmax))
        if src.ttl is not None and tmin is not None:
            cond = cond & (F.col(T_COL) > F.lit(tmin - _ttl_us(src.ttl)))
    return SourcePlan(
        index=s,
        feats=src.df.select(*sel).where(cond),
        keys=src.keys,
        key_cols=kcols,
        key_casts=casts,
        tie_cols=ties,
        value_cols=values,
        sortable_value_cols=tuple(
            n for n, c in zip(values, src.features, strict=True) if sortable(ftypes[c])
        ),
        hash_col=HASH_COL if unordered else None,
        matched_col=f"{_P}s{s}_m",
        ttl_us=None if src.ttl is None else _ttl_us(src.ttl),
    )


def _spine_key_ranges(spine: DataFrame, plan: SourcePlan, spine_time: Column) -> DataFrame:
    """Per distinct spine key (non-null, cast to ``plan``'s key types): the first and last
    spine time (``__pit_lo``, ``__pit_hi``; null when every time of the key is null)."""
    rows = spine.select(*plan.spine_key_columns(), spine_time.alias(T_COL))
    rows = rows.where(_present(len(plan.keys), None))
    return rows.groupBy(*plan.key_cols).agg(F.min(T_COL).alias(_LO), F.max(T_COL).alias(_HI))


def _prune_to_spine(plan: SourcePlan, ranges: DataFrame, inclusive: bool) -> SourcePlan:
    """``plan`` without the feature rows no spine row can use: rows of keys not in the
    spine, rows after their key's last spine time and, with a TTL, rows that expired
    before their key's first spine time. ``ranges`` (:func:`_spine_key_ranges`) is
    broadcast: the feature rows are not shuffled for this."""
    t = F.col(T_COL)
    cond = (t <= F.col(_HI)) if inclusive else (t < F.col(_HI))
    if plan.ttl_us is not None:
        cond = cond & (t > F.col(_LO) - F.lit(plan.ttl_us))
    feats = plan.feats.join(F.broadcast(ranges), list(plan.key_cols), "inner").where(cond)
    return replace(plan, feats=feats.select(*plan.feats.columns))


def _ttl_us(ttl: timedelta) -> int:
    return ttl // timedelta(microseconds=1)


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
