"""Range reducers over sorted events, in numpy: every query is a half-open index range.

The window kernel (:mod:`seeknal_spark.offline.windows.kernel`) sorts one group's events
by (key, time) and turns each spine row and window into an index range ``[lo, hi)`` of
that order; these functions answer many ranges at once, none by looping over a range's
elements, so a key with many spine rows and long windows costs ``O((n + q) log n)``, not
``O(n * q)``:

- **Sums** from prefix sums. Integers use wrapping int64 prefixes (the difference is exact
  whenever the window's sum fits a long; a sum that does not raises ``OverflowError``).
  Floats use *cascaded compensated* prefix sums: the rounding error of every step of the
  running sum is recovered exactly (Knuth's TwoSum) and summed beside it, three levels
  deep, and the difference of two prefixes is taken with TwoSum too, so a window's sum
  is a double-double within about ``eps**3`` of the prefix of the exact sum: exact to the
  last bits even when the prefix is far larger than the window (plain prefix
  differencing loses the window's digits to the prefix). NaN and infinities are counted
  apart and give NaN/inf as a direct sum would.
- **Variance** as ``(n * sum(x**2) - sum(x)**2) / (n * (n - 1))`` with the squares taken
  exactly (Dekker's TwoProduct), both sums kept as double-doubles and the subtraction
  done in double-double: the textbook formula's cancellation leaves a relative error of
  about ``eps**2 * mean**2 / variance`` (1e-12 at a ratio of 1e20, where a two-pass sum
  in doubles is already off); a window whose values are all equal gets exactly 0.
- **Min / max** over dense ranks of the values with a sparse table (``log n`` levels, each
  one ``numpy.minimum`` of the previous level with itself shifted), built level by level
  while answering the ranges of that level, so two levels are in memory at a time.
- **Distinct counts** with each element's previous occurrence of the same value and key:
  the distinct values of ``[lo, hi)`` are the elements there whose previous occurrence is
  before ``lo``, i.e. ``#{i < hi : prev[i] < lo} - lo``; the dominance count is read from
  a merge-sort tree, one sorted level at a time (``[0, hi)`` splits into one block per set
  bit of ``hi``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "distinct_counts",
    "float_sums",
    "integer_sums",
    "previous_occurrences",
    "range_extremes",
    "variances",
]

_I64 = np.int64
_F64 = np.float64
_LONG_LIMIT = float(2**63)
_LEVELS = 3  # cascaded prefix sums: values, their rounding errors, and those errors' errors
_SPLITTER = float(2**27 + 1)  # Dekker's split of a double into two 26-bit halves


def _prefix(values: np.ndarray) -> np.ndarray:
    """``[0, v0, v0 + v1, ...]`` (length ``n + 1``)."""
    out = np.zeros(len(values) + 1, dtype=values.dtype)
    np.cumsum(values, out=out[1:])
    return out


def _range_counts(flags: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    prefix = _prefix(flags.astype(_I64))
    return np.asarray(prefix[hi] - prefix[lo], dtype=_I64)


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(p, e)`` with ``p = fl(a * b)`` and ``a * b = p + e`` exactly (Dekker)."""
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = _SPLITTER * a
    high = c - (c - a)
    return high, a - high


def _window_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sums of finite ``values[lo:hi]`` as unevaluated pairs ``high + low`` (double-double).

    Cascaded prefix sums: the running sum of the values, the running sum of its exact
    rounding errors (TwoSum), and so on for ``_LEVELS`` levels; each level's prefix
    difference is taken with TwoSum too. The error is about ``eps**_LEVELS`` times the
    prefix, so a window's sum keeps its digits however large the prefix before it."""
    high = np.zeros(len(lo), dtype=_F64)
    low = np.zeros(len(lo), dtype=_F64)
    current = np.asarray(values, dtype=_F64)
    with np.errstate(invalid="ignore", over="ignore"):
        for level in range(_LEVELS):
            running = _prefix(current)  # sequential: running[i] = fl(running[i-1] + v)
            if level < _LEVELS - 1:
                _, current = _two_sum(running[:-1], current)  # the exact rounding errors
            d, e = _two_sum(running[hi], -running[lo])
            high, carry = _two_sum(high, d)
            low = low + (carry + e)
        high, low = _two_sum(high, low)
    return high, low


def float_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of ``values[lo:hi]`` per range (float64): NaN when the range holds a NaN or
    both infinities, +-inf when it holds one of them, 0.0 when it is empty."""
    x = np.asarray(values, dtype=_F64)
    finite = np.isfinite(x)
    high, low = _window_sums(np.where(finite, x, 0.0), lo, hi)
    total = np.asarray(high + low, dtype=_F64)
    if not finite.all():
        nan = _range_counts(np.isnan(x), lo, hi) > 0
        pos = _range_counts(x == np.inf, lo, hi) > 0
        neg = _range_counts(x == -np.inf, lo, hi) > 0
        total = np.where(pos, np.inf, np.where(neg, -np.inf, total))
        total = np.where(nan | (pos & neg), np.nan, total)
    return total


def integer_sums(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, what: str = "a column"
) -> np.ndarray:
    """Exact sum of ``values[lo:hi]`` (int64) per range.

    Raises
    ------
    OverflowError
        When a range's sum does not fit a long (naming ``what``).
    """
    x = np.asarray(values, dtype=_I64)
    with np.errstate(over="ignore"):
        prefix = _prefix(x)  # wraps around: differences stay exact (mod 2**64)
        sums = np.asarray(prefix[hi] - prefix[lo], dtype=_I64)
    approx = float_sums(x.astype(_F64), lo, hi)
    if len(approx) and np.abs(approx).max() >= _LONG_LIMIT:
        raise OverflowError(
            f"a window's sum of {what} does not fit a long: cast the column to double"
        )
    return sums


def variances(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sample variance of ``values[lo:hi]`` per range (float64; NaN below two values or
    when the range holds a NaN or an infinity)."""
    x = np.asarray(values, dtype=_F64)
    n = (hi - lo).astype(_F64)
    finite = np.isfinite(x)
    xf = np.where(finite, x, 0.0)
    s1_high, s1_low = _window_sums(xf, lo, hi)
    squares, square_errors = _two_prod(xf, xf)  # x**2 exactly, as a pair
    a_high, a_low = _window_sums(squares, lo, hi)
    b_high, b_low = _window_sums(square_errors, lo, hi)
    s2_high, carry = _two_sum(a_high, b_high)
    s2_low = carry + (a_low + b_low)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # n * sum(x**2) - sum(x)**2 in double-double: its cancellation loses no digit
        p1, e1 = _two_prod(n, s2_high)
        p2, e2 = _two_prod(s1_high, s1_high)
        d, e3 = _two_sum(p1, -p2)
        spread = d + (e3 + ((e1 + n * s2_low) - (e2 + 2.0 * s1_high * s1_low)))
        var = np.maximum(spread, 0.0) / (n * (n - 1.0))
    # all values of the range equal (no change between neighbours inside it): exactly 0
    change = np.zeros(len(x), dtype=bool)
    change[1:] = x[1:] != x[:-1]
    changes = _prefix(change.astype(_I64))
    inner = changes[hi] - changes[np.minimum(lo + 1, hi)]
    var = np.where(inner == 0, 0.0, var)
    bad = _range_counts(~finite, lo, hi) > 0
    return np.asarray(np.where((n < 2) | bad, np.nan, var), dtype=_F64)


def range_extremes(
    ranks: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, greatest: bool
) -> np.ndarray:
    """The smallest (``greatest=False``) or greatest rank of ``ranks[lo:hi]`` per
    non-empty range (sparse table); 0 for empty ranges."""
    op = np.maximum if greatest else np.minimum
    out = np.zeros(len(lo), dtype=_I64)
    length = hi - lo
    queries = np.nonzero(length > 0)[0]
    if not len(queries):
        return out
    _, exponent = np.frexp(length[queries].astype(_F64))
    levels = exponent.astype(_I64) - 1  # floor(log2(length)), exact for any int64 length
    level = np.asarray(ranks, dtype=_I64)
    for j in range(int(levels.max()) + 1):
        if j:  # level j: op over [i, i + 2**j)
            half = 1 << (j - 1)
            level = op(level[:-half], level[half:])
        mine = queries[levels == j]
        if len(mine):
            out[mine] = op(level[lo[mine]], level[hi[mine] - (1 << j)])
    return out


def previous_occurrences(ids: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per element, the index of the previous element with the same id and group (-1)."""
    n = len(ids)
    prev = np.full(n, -1, dtype=_I64)
    if n < 2:
        return prev
    width = int(ids.max()) + 1
    combined = groups.astype(_I64) * width + ids.astype(_I64)
    order = np.argsort(combined, kind="stable")
    same = combined[order[1:]] == combined[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def distinct_counts(
    ids: np.ndarray, groups: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Number of distinct ``ids`` in ``ids[lo:hi]`` per range, exactly (module docstring).

    Ranges must not cross groups (ids are compared within their group)."""
    n = len(ids)
    prev_key = previous_occurrences(ids, groups) + 1  # in [0, n]
    below = np.zeros(len(lo), dtype=_I64)  # #{i < hi : prev[i] < lo}
    top = int(hi.max()) if len(hi) else 0
    positions = np.arange(n, dtype=_I64)
    for k in range(top.bit_length()):
        has = np.nonzero((hi >> k) & 1)[0]
        if not len(has):
            continue
        block = (hi[has] >> k) - 1  # [0, hi)'s block of size 2**k: [block, block + 1) * 2**k
        level = np.sort((positions >> k) * (n + 1) + prev_key)
        found = np.searchsorted(level, block * (n + 1) + lo[has] + 1, side="left")
        below[has] += found - (block << k)
    return np.asarray(below - lo, dtype=_I64)
