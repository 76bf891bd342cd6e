"""The as-of merge of one group of spine rows and feature rows, in Arrow and numpy.

:class:`AsOfKernel` is what :func:`seeknal_spark.offline.pit.join.point_in_time_join` runs in each
cogrouped group (``applyInArrow``): it receives every spine row and every feature row of
one (key bucket, time window) and returns the spine rows with the chosen feature values.
It holds no Spark objects, so it pickles to the executors, and it is tested on its own.

The merge is a sort and one linear scan:

1. Spine rows and feature rows are put in one order: keys, time, then side (feature rows
   before spine rows at equal time when the match is inclusive, after otherwise), then the
   tie-breakers, the feature values and a hash of those that cannot be ordered, nulls
   first.
2. Each spine row takes, per feature table, the last row of that table before it in that
   order (a running maximum of positions), if that row has the same keys and is within
   the table's TTL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seeknal_spark._timestamps import arrow_utc

__all__ = ["AsOfKernel", "KernelSource", "as_cogroup_function"]


def _column(table: pa.Table, name: str) -> pa.Array:
    chunked = table.column(name)
    if chunked.num_chunks == 1:
        return chunked.chunk(0)
    return chunked.combine_chunks()


def _sort_indices(table: pa.Table) -> np.ndarray:
    """Ascending order over every column of ``table``, nulls first."""
    try:
        options = pc.SortOptions(
            sort_keys=[(name, "ascending", "at_start") for name in table.column_names]
        )
    except (TypeError, ValueError, pa.ArrowInvalid):  # pyarrow < 25: one placement for all
        options = pc.SortOptions(
            sort_keys=[(name, "ascending") for name in table.column_names],
            null_placement="at_start",
        )
    indices = pc.sort_indices(table, options=options)
    return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)


@dataclass(frozen=True)
class KernelSource:
    """One feature table inside a merged group: which rows and columns are its own.

    Parameters
    ----------
    index:
        Its rows have this value in the kernel's ``source_col``.
    tie_cols:
        Tie-breakers, compared in this order (greatest wins, nulls lowest).
    value_cols:
        Columns holding its feature values.
    out_names:
        The output name of each of ``value_cols``.
    hash_col:
        Hash of its values that cannot be ordered (None when all can): the last tie-breaker.
    matched_col:
        Output column: whether a feature row was found.
    ttl_us:
        A feature row older than this (``spine time - event time >= ttl_us``) is not used.
    """

    index: int
    tie_cols: tuple[str, ...]
    value_cols: tuple[str, ...]
    out_names: tuple[str, ...]
    hash_col: str | None
    matched_col: str
    ttl_us: int | None


@dataclass(frozen=True)
class AsOfKernel:
    """As-of merge of one cogrouped group (see the module docstring).

    Feature tables that share key columns are merged in one group: their rows carry a
    source index, and columns may be shared between tables (slots), since a row belongs
    to one table only. Sorting by every tie column in the order given is the same as
    sorting each table's rows by its own tie-breakers when each table's columns appear in
    that order, and the columns of other tables are null (equal) on its rows.

    Parameters
    ----------
    spine_cols:
        Columns of the spine side returned as they are.
    key_cols:
        Key columns, present on both sides with the same types.
    time_col:
        UTC microseconds (int64), present on both sides.
    source_col:
        Feature side: the index of the table a row comes from.
    tie_order:
        Feature-side columns breaking ties, in order (every table's tie-breakers, then its
        orderable values, then its hash of unorderable values, in this global order).
    sources:
        The tables.
    inclusive:
        Whether a feature row at exactly the spine time is used.
    """

    spine_cols: tuple[str, ...]
    key_cols: tuple[str, ...]
    time_col: str
    source_col: str
    tie_order: tuple[str, ...]
    sources: tuple[KernelSource, ...]
    inclusive: bool

    def output_names(self) -> list[str]:
        names = list(self.spine_cols)
        for src in self.sources:
            names += [*src.out_names, src.matched_col]
        return names

    def __call__(self, spine: pa.Table, feats: pa.Table) -> pa.Table:
        n, m = spine.num_rows, feats.num_rows
        out: list[pa.Array | pa.ChunkedArray] = [spine.column(c) for c in self.spine_cols]
        if m == 0 or n == 0:
            for src in self.sources:
                out += [pa.nulls(n, type=feats.schema.field(c).type) for c in src.value_cols]
                out.append(pa.array(np.zeros(n, dtype=bool)))
            return pa.Table.from_arrays(out, names=self.output_names())
        for src, (feat_index, matched) in zip(self.sources, self.match(spine, feats), strict=True):
            idx = pa.array(feat_index, type=pa.int64(), mask=~matched)
            out += [pc.take(_column(feats, c), idx) for c in src.value_cols]
            out.append(pa.array(matched))
        return pa.Table.from_arrays(out, names=self.output_names())

    def match(self, spine: pa.Table, feats: pa.Table) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per table, per spine row (input order): the index of its feature row, and
        whether it has one."""
        n, m = spine.num_rows, feats.num_rows
        spine_side, feat_side = (1, 0) if self.inclusive else (0, 1)
        sort_cols: dict[str, pa.Array] = {}
        for i, name in enumerate(self.key_cols):
            sort_cols[f"k{i}"] = pa.concat_arrays([_column(spine, name), _column(feats, name)])
        t = pa.concat_arrays([_column(spine, self.time_col), _column(feats, self.time_col)])
        sort_cols["t"] = t
        side = np.concatenate([np.full(n, spine_side, np.int8), np.full(m, feat_side, np.int8)])
        sort_cols["side"] = pa.array(side)
        src_col = np.asarray(
            pc.fill_null(_column(feats, self.source_col), -1).to_numpy(zero_copy_only=False),
            dtype=np.int64,
        )
        src_all = np.concatenate([np.full(n, -1, np.int64), src_col])
        sort_cols["src"] = pa.array(src_all)
        for i, name in enumerate(self.tie_order):
            col = _column(feats, name)
            sort_cols[f"b{i}"] = pa.concat_arrays([pa.nulls(n, type=col.type), col])
        order = _sort_indices(pa.table(sort_cols))

        total = n + m
        is_feat = order >= n
        pos = np.arange(total, dtype=np.int64)
        # a group id per sorted row: equal ids <=> equal, non-null keys
        change = np.zeros(total, dtype=bool)
        valid = np.ones(total, dtype=bool)
        for i in range(len(self.key_cols)):
            col = pc.take(sort_cols[f"k{i}"], pa.array(order))
            if total > 1:
                differs = pc.fill_null(pc.not_equal(col.slice(1), col.slice(0, total - 1)), True)
                change[1:] |= np.asarray(differs.to_numpy(zero_copy_only=False), dtype=bool)
            valid &= np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        change |= ~valid
        group = np.cumsum(change)
        t_sorted = np.asarray(pc.fill_null(t, 0).to_numpy(zero_copy_only=False), np.int64)[order]
        t_valid = np.asarray(t.is_valid().to_numpy(zero_copy_only=False), dtype=bool)[order]
        spine_ok = ~is_feat & valid & t_valid
        spine_rows = np.nonzero(~is_feat)[0]
        src_sorted = src_all[order]
        results = []
        for src in self.sources:
            last = np.maximum.accumulate(np.where(src_sorted == src.index, pos, -1))
            safe = np.maximum(last, 0)
            ok = spine_ok & (last >= 0) & (group[safe] == group)
            if src.ttl_us is not None:
                ok &= (t_sorted - t_sorted[safe]) < src.ttl_us
            feat_index = np.zeros(n, dtype=np.int64)
            matched = np.zeros(n, dtype=bool)
            feat_index[order[spine_rows]] = order[safe[spine_rows]] - n
            matched[order[spine_rows]] = ok[spine_rows]
            feat_index[~matched] = 0
            results.append((feat_index, matched))
        return results


def as_cogroup_function(
    kernel: AsOfKernel, columns: Sequence[str]
) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """``kernel`` as a two-argument function (what ``applyInArrow`` inspects), its output
    reordered to ``columns``."""

    def merge_group(spine: pa.Table, feats: pa.Table) -> pa.Table:
        return arrow_utc(kernel(spine, feats).select(list(columns)))

    return merge_group
