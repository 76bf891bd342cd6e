"""The window aggregates of one cogrouped group of spine rows and events, in Arrow and numpy.

:class:`WindowKernel` is what :func:`seeknal_spark.offline.windows.window_aggregates` runs
in each cogrouped group (``applyInArrow``): it receives every spine row and every event of
one (key bucket, time range) and returns the spine rows with one column per feature. It
holds no Spark objects, so it pickles to the executors, and it is tested on its own.

1. **Keys to ids.** Spine and event keys are sorted together and numbered, so equal keys
   share an id; a row with a null key (or time) gets none and its windows are empty.
2. **One order per column.** For each aggregated column, the events holding a value (every
   event for ``count_events``) are sorted by (key id, time, value rank): the values of one
   key and window are then contiguous, and among events at one time the greatest value is
   last (the tie rule of ``last``; the order makes float sums reproducible too).
3. **Bounds by binary search.** A spine row at time ``t`` and a window ``w`` become the
   index range ``[lo, hi)`` of its key's events with ``t - w < time <= t`` (``< t`` when
   not inclusive): ``hi`` and ``lo`` are ``searchsorted`` positions of ``(key id, t)`` and
   ``(key id, t - w)`` in the sorted events.
4. **Reduce ranges.** :mod:`seeknal_spark.offline.windows.reducers` answers every range of
   every spine row and window at once (prefix sums, sparse tables, previous occurrences).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seeknal_spark._timestamps import arrow_utc
from seeknal_spark.offline.windows.reducers import (
    distinct_counts,
    float_sums,
    integer_sums,
    range_extremes,
    variances,
)

__all__ = ["WindowFeature", "WindowKernel", "as_cogroup_function", "group_ids"]

_I64 = np.int64
_COUNTS = ("count", "count_events", "approx_count_distinct")


def _column(table: pa.Table, name: str) -> pa.Array:
    chunked = table.column(name)
    if chunked.num_chunks == 1:
        return chunked.chunk(0)
    return chunked.combine_chunks()


def _ints(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(array, 0).to_numpy(zero_copy_only=False), dtype=_I64)


def _valid(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def group_ids(
    spine: pa.Table, events: pa.Table, key_cols: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per spine row and per event: an id shared by rows with equal keys (ids are
    non-negative and below the number of rows), or -1 when a key is null (step 1)."""
    n, total = spine.num_rows, spine.num_rows + events.num_rows
    ids = np.full(total, -1, dtype=_I64)
    if total == 0:
        return ids[:n], ids[n:]
    cols = {
        f"k{i}": pa.concat_arrays([_column(spine, c), _column(events, c)])
        for i, c in enumerate(key_cols)
    }
    order = np.asarray(
        pc.sort_indices(pa.table(cols), sort_keys=[(k, "ascending") for k in cols]), dtype=_I64
    )
    change = np.zeros(total, dtype=bool)
    change[0] = True
    valid = np.ones(total, dtype=bool)
    for col in cols.values():
        ordered = pc.take(col, pa.array(order))
        if total > 1:
            differs = pc.fill_null(
                pc.not_equal(ordered.slice(1), ordered.slice(0, total - 1)), True
            )
            change[1:] |= np.asarray(differs.to_numpy(zero_copy_only=False), dtype=bool)
        valid &= _valid(ordered)
    ids[order] = np.where(valid, np.cumsum(change) - 1, -1)
    return ids[:n], ids[n:]


@dataclass(frozen=True)
class WindowFeature:
    """One output column: ``function`` of the events' ``column`` over ``window_us``.

    ``column`` is the events column holding the values (None: every event, for
    ``count_events``).
    """

    name: str
    function: str
    column: str | None
    window_us: int


@dataclass(frozen=True)
class _Times:
    """The events' distinct times, sorted, and each event's rank among them."""

    distinct: np.ndarray
    ranks: np.ndarray

    @classmethod
    def of(cls, times: np.ndarray) -> _Times:
        # a sort and a comparison of neighbours: numpy's unique and searchsorted are
        # several times slower on unsorted int64
        order = np.argsort(times)
        ordered = times[order]
        new = np.ones(len(times), dtype=bool)
        new[1:] = ordered[1:] != ordered[:-1]
        ranks = np.empty(len(times), dtype=_I64)
        ranks[order] = np.cumsum(new) - 1
        return cls(ordered[new], ranks)


def _order(keyed: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The order of rows by (``keyed``, ``ranks``): one argsort of a combined int64 when it
    cannot overflow, else a lexsort."""
    if not len(keyed):
        return np.zeros(0, dtype=_I64)
    span = int(ranks.max()) + 1
    if (int(keyed.max()) + 1) * span < 2**62:
        return np.asarray(np.argsort(keyed * span + ranks), dtype=_I64)
    return np.asarray(np.lexsort((ranks, keyed)), dtype=_I64)


@dataclass
class _Sorted:
    """The events of one column in (key id, time, value rank) order (step 2)."""

    groups: np.ndarray
    keyed: np.ndarray  # key id * (distinct times + 1) + time rank: non-decreasing
    times: np.ndarray  # distinct event times, sorted
    values: pa.Array | None
    ranks: np.ndarray

    @classmethod
    def build(
        cls,
        events: pa.Table,
        column: str | None,
        groups: np.ndarray,
        times: _Times,
        usable: np.ndarray,
    ) -> _Sorted:
        rows = usable.copy()
        values = None
        if column is not None:
            values = _column(events, column)
            rows &= _valid(values)
        picked = np.nonzero(rows)[0]
        ranks = np.zeros(len(picked), dtype=_I64)
        if values is not None:
            values = pc.take(values, pa.array(picked, type=pa.int64()))
            if len(picked):
                dense = pc.rank(values, sort_keys="ascending", tiebreaker="dense")
                ranks = np.asarray(dense.to_numpy(zero_copy_only=False), dtype=_I64)
        width = len(times.distinct) + 1
        keyed = groups[picked] * width + times.ranks[picked]  # (key id, time) as one number
        order = _order(keyed, ranks)
        if values is not None:
            values = pc.take(values, pa.array(order, type=pa.int64()))
        return cls(groups[picked][order], keyed[order], times.distinct, values, ranks[order])

    def bound(self, groups: np.ndarray, times: np.ndarray, side: str) -> np.ndarray:
        """Per (key id, time): how many sorted events have a smaller key id, or the same
        key id and a time ``<=`` (``side="right"``) or ``<`` (``"left"``) the given time."""
        rank = np.searchsorted(self.times, times, side=side)  # type: ignore[call-overload]
        wanted = np.maximum(groups, 0) * (len(self.times) + 1) + rank
        return np.asarray(np.searchsorted(self.keyed, wanted, side="left"), dtype=_I64)


def _take(values: pa.Array, index: np.ndarray, present: np.ndarray) -> pa.Array:
    if not len(values):
        return pa.nulls(len(index), type=values.type)
    safe = np.where(present, index, 0)
    return pc.take(values, pa.array(safe, type=pa.int64(), mask=~present))


def _reduce(function: str, data: _Sorted, lo: np.ndarray, hi: np.ndarray, what: str) -> pa.Array:
    """``function`` over every range ``[lo, hi)`` of ``data`` (step 4)."""
    n = hi - lo
    empty = n == 0
    if function in ("count", "count_events"):
        return pa.array(n, type=pa.int64())
    if function == "approx_count_distinct":
        return pa.array(distinct_counts(data.ranks, data.groups, lo, hi), type=pa.int64())
    values = data.values
    if values is None:  # unreachable: only count_events reads no column
        raise ValueError(f"{what}: {function} needs a column")
    if function in ("min", "max"):
        best = range_extremes(data.ranks, lo, hi, greatest=function == "max")
        one_of_rank = np.zeros(int(data.ranks.max(initial=0)) + 1, dtype=_I64)
        one_of_rank[data.ranks] = np.arange(len(data.ranks), dtype=_I64)  # equal values
        return _take(values, one_of_rank[best], ~empty)
    if function == "last":
        return _take(values, hi - 1, ~empty)
    integral = pa.types.is_integer(values.type)
    if integral:
        numbers = np.asarray(values.cast(pa.int64()).to_numpy(zero_copy_only=False), _I64)
    else:
        numbers = np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), float)
    if function == "sum" and integral:
        return pa.array(integer_sums(numbers, lo, hi, what=what), type=pa.int64(), mask=empty)
    if function in ("sum", "avg"):
        sums = integer_sums(numbers, lo, hi, what=what) if integral else float_sums(numbers, lo, hi)
        result = sums.astype(float)
        if function == "avg":
            with np.errstate(invalid="ignore", divide="ignore"):
                result = result / np.maximum(n, 1)
        return pa.array(result, type=pa.float64(), mask=empty)
    var = variances(numbers, lo, hi)
    if function == "stddev":
        var = np.sqrt(var)
    return pa.array(var, type=pa.float64(), mask=n < 2)


@dataclass(frozen=True)
class WindowKernel:
    """Window aggregates of one cogrouped group (see the module docstring).

    Parameters
    ----------
    spine_cols:
        Columns of the spine side returned as they are.
    key_cols:
        Key columns, present on both sides with the same types.
    time_col:
        UTC microseconds (int64), present on both sides.
    features:
        The output columns, in order.
    inclusive:
        Whether an event at exactly the spine time is in its windows.
    """

    spine_cols: tuple[str, ...]
    key_cols: tuple[str, ...]
    time_col: str
    features: tuple[WindowFeature, ...]
    inclusive: bool

    def output_names(self) -> list[str]:
        return [*self.spine_cols, *(f.name for f in self.features)]

    def __call__(self, spine: pa.Table, events: pa.Table) -> pa.Table:
        spine_groups, event_groups = group_ids(spine, events, self.key_cols)
        # spine rows in (key id, time) order: every bound below is then a search of sorted
        # needles, several times faster; the rows go back to their order at the end
        order = np.lexsort((_ints(_column(spine, self.time_col)), spine_groups))
        spine, spine_groups = spine.take(pa.array(order, type=pa.int64())), spine_groups[order]
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        spine_t, event_t = _column(spine, self.time_col), _column(events, self.time_col)
        t = _ints(spine_t)
        answerable = (spine_groups >= 0) & _valid(spine_t)
        usable = (event_groups >= 0) & _valid(event_t)
        event_times = _Times.of(_ints(event_t))
        results: dict[str, pa.Array] = {}
        by_column: dict[str | None, list[WindowFeature]] = {}
        for feature in self.features:
            by_column.setdefault(feature.column, []).append(feature)
        side = "right" if self.inclusive else "left"
        for column, features in by_column.items():
            data = _Sorted.build(events, column, event_groups, event_times, usable)
            hi = np.where(answerable, data.bound(spine_groups, t, side), 0)
            starts: dict[int, np.ndarray] = {}  # window -> lo, shared by its functions
            for f in features:
                if f.window_us not in starts:
                    lo = data.bound(spine_groups, t - f.window_us, "right")
                    starts[f.window_us] = np.where(answerable, lo, 0)
            by_function: dict[str, list[WindowFeature]] = {}
            for feature in features:
                by_function.setdefault(feature.function, []).append(feature)
            for function, same in by_function.items():
                # every window of one function at once: the reducers' tables are shared
                los = [starts[f.window_us] for f in same]
                what = ", ".join(f.name for f in same)
                out = _reduce(function, data, np.concatenate(los), np.tile(hi, len(same)), what)
                for j, feature in enumerate(same):
                    results[feature.name] = out.slice(j * len(t), len(t))
        columns = [spine.column(c) for c in self.spine_cols]
        columns += [results[f.name] for f in self.features]
        table = pa.Table.from_arrays(columns, names=self.output_names())
        return table.take(pa.array(back, type=pa.int64()))


def as_cogroup_function(
    kernel: WindowKernel, columns: Sequence[str]
) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """``kernel`` as a two-argument function (what ``applyInArrow`` inspects), its output
    reordered to ``columns`` and its timestamps labelled UTC."""

    def aggregate_group(spine: pa.Table, events: pa.Table) -> pa.Table:
        return arrow_utc(kernel(spine, events).select(list(columns)))

    return aggregate_group
