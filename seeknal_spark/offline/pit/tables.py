"""Feature tables in the join's internal shape: columns, :class:`SourcePlan`, pruning.

Every internal column starts with ``__pit_``. A feature table becomes a
:class:`SourcePlan`: its keys renamed ``__pit_k0``..., its event time as UTC microseconds
(``__pit_t``), its tie-breakers and values renamed, and the rows no spine row can use
dropped (null keys or times, before ``feature_start_time``, after the last spine time,
expired before the first one; with few spine keys, the same per key).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructType

from seeknal_spark._timestamps import utc_micros_column
from seeknal_spark.offline.pit.source import AsOfSource, feature_hash

__all__ = [
    "HASH_COL",
    "P",
    "SRC_COL",
    "T_COL",
    "SourcePlan",
    "key_times",
    "prune_to_spine",
    "sortable",
    "source_plan",
    "spine_key_ranges",
    "ttl_us",
]

P = "__pit_"  # prefix of every internal column
T_COL = f"{P}t"  # UTC microseconds
HASH_COL = f"{P}h"  # hash of the feature values that cannot be ordered
SRC_COL = f"{P}src"  # index of the feature table a row comes from
_LO = f"{P}slo"  # first spine time of a key
_HI = f"{P}shi"  # last spine time of a key


def sortable(dtype: DataType) -> bool:
    """Whether values of ``dtype`` can be ordered by the merge (atomic types only)."""
    return not isinstance(dtype, (ArrayType, MapType, StructType))


@dataclass(frozen=True)
class SourcePlan:
    """One feature table in the internal shape, pruned, ready to merge.

    ``feats`` has the key columns ``key_cols``, ``T_COL``, the tie-breakers ``tie_cols``,
    the value columns ``value_cols`` (named as in the output) and, when some values
    cannot be ordered, ``hash_col``: a hash of those, the last tie-breaker.
    """

    index: int
    feats: DataFrame
    keys: tuple[str, ...]
    key_cols: tuple[str, ...]
    key_casts: dict[str, DataType]
    tie_cols: tuple[str, ...]
    value_cols: tuple[str, ...]
    sortable_value_cols: tuple[str, ...]
    hash_col: str | None
    matched_col: str
    ttl_us: int | None

    def spine_key_columns(self) -> list[Column]:
        """The spine's key columns, cast to this table's key types, named ``key_cols``."""
        cols = []
        for key, kc in zip(self.keys, self.key_cols, strict=True):
            cast = self.key_casts.get(key)
            col = F.col(f"`{key}`")
            cols.append((col if cast is None else col.cast(cast)).alias(kc))
        return cols


def ttl_us(ttl: timedelta) -> int:
    """``ttl`` in whole microseconds."""
    return ttl // timedelta(microseconds=1)


def key_times(src: AsOfSource, start_us: int | None) -> DataFrame:
    """A table's key columns (``__pit_k0``...) and UTC event times, non-null, from
    ``feature_start_time`` on: what the hot-key sample reads."""
    et_type = src.df.schema[src.event_time_col].dataType
    t = utc_micros_column(F.col(f"`{src.event_time_col}`"), et_type)
    keys = [F.col(f"`{k}`").alias(f"{P}k{j}") for j, k in enumerate(src.keys)]
    frame = src.df.select(*keys, t.alias(T_COL))
    return frame.where(F.col(T_COL).isNotNull() & _present(len(src.keys), start_us))


def _present(n_keys: int, start_us: int | None) -> Column:
    """Rows whose key columns (``__pit_k0``...) are all set, from ``start_us`` on (if given)."""
    cond = F.lit(True)
    for j in range(n_keys):
        cond = cond & F.col(f"{P}k{j}").isNotNull()
    if start_us is not None:
        cond = cond & (F.col(T_COL) >= F.lit(start_us))
    return cond


def source_plan(
    s: int,
    src: AsOfSource,
    casts: dict[str, DataType],
    *,
    start_us: int | None,
    tmin: int | None,
    tmax: int | None,
) -> SourcePlan:
    """Source ``s``'s feature rows in the internal shape, pruned to what can match."""
    kcols = tuple(f"{P}k{j}" for j in range(len(src.keys)))
    ties = tuple(f"{P}s{s}_tb{j}" for j in range(len(src.tie_break_cols)))
    values = tuple(f"{P}s{s}_f{j}" for j in range(len(src.features)))
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
            cond = cond & (F.col(T_COL) > F.lit(tmin - ttl_us(src.ttl)))
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
        matched_col=f"{P}s{s}_m",
        ttl_us=None if src.ttl is None else ttl_us(src.ttl),
    )


def spine_key_ranges(spine: DataFrame, plan: SourcePlan, spine_time: Column) -> DataFrame:
    """Per distinct spine key (non-null, cast to ``plan``'s key types): the first and last
    spine time (``__pit_lo``, ``__pit_hi``; null when every time of the key is null)."""
    rows = spine.select(*plan.spine_key_columns(), spine_time.alias(T_COL))
    rows = rows.where(_present(len(plan.keys), None))
    return rows.groupBy(*plan.key_cols).agg(F.min(T_COL).alias(_LO), F.max(T_COL).alias(_HI))


def prune_to_spine(plan: SourcePlan, ranges: DataFrame, inclusive: bool) -> SourcePlan:
    """``plan`` without the feature rows no spine row can use: rows of keys not in the
    spine, rows after their key's last spine time and, with a TTL, rows that expired
    before their key's first spine time. ``ranges`` (:func:`spine_key_ranges`) is
    broadcast: the feature rows are not shuffled for this."""
    t = F.col(T_COL)
    cond = (t <= F.col(_HI)) if inclusive else (t < F.col(_HI))
    if plan.ttl_us is not None:
        cond = cond & (t > F.col(_LO) - F.lit(plan.ttl_us))
    feats = plan.feats.join(F.broadcast(ranges), list(plan.key_cols), "inner").where(cond)
    return replace(plan, feats=feats.select(*plan.feats.columns))
