"""The knobs of the point-in-time join's plan (:class:`PitTuning`): never the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PitTuning", "check_knobs"]


@dataclass(frozen=True)
class PitTuning:
    """Knobs of the join plan; they never change the result, only how it is computed.

    Parameters
    ----------
    sample_rows:
        Feature rows per table read to find hot keys: the first rows of its partitions,
        which costs a fraction of a full scan (a biased sample when files are sorted by
        key: a missed hot key only costs time). None: every row.
    hot_key_share:
        A key holding more than this share of the sampled rows of a feature table is split
        into time windows. None: ``1 / (2 * shuffle partitions)``. ``0.0`` splits every
        sampled key (for tests).
    max_hot_keys:
        At most this many keys per feature table are split (the hot-key table is broadcast).
    max_windows:
        At most this many time windows per hot key. None: ``4 * shuffle partitions``.
    hot_key_windows:
        Split every hot key into this many windows (for tests; fewer when its sample has
        fewer distinct times); None: from its share.
    prune_keys_max:
        Feature rows are pruned per key (a broadcast table of each spine key's first and
        last spine time) when the spine has at most this many distinct keys (estimated):
        about 32 bytes per key for a numeric key go through the driver. 0 disables it.
    plan:
        ``"merge"``: the cogrouped merge above. ``"join"``: per table, a key join on
        ``event time <= spine time`` ranked per spine row, inside key partitions (the spine
        is shuffled by key once). Cheaper when keys have few spine rows and the feature
        rows could not be pruned per key, ruinous when a key has many spine rows and many
        feature rows. ``"auto"``: the merge when the feature rows are pruned per key (see
        ``prune_keys_max``) or a table has a hot key; else one small job finds the most
        spine rows of one key, and the join is used when that is at most
        ``join_max_spine_rows`` (each feature row then pairs with at most that many spine
        rows).
    join_max_spine_rows:
        See ``plan``.
    buckets:
        Hash buckets the keys that are not hot fall into (each bucket is merged in one
        Python call, so its rows must fit in a worker's memory). None: ``4 * shuffle
        partitions``, at least 8.

    Examples
    --------
    >>> PitTuning(plan="join").plan
    'join'
    >>> PitTuning(plan="fast")
    Traceback (most recent call last):
    ...
    ValueError: plan must be 'auto', 'merge' or 'join', got 'fast'
    """

    sample_rows: int | None = 50_000
    hot_key_share: float | None = None
    max_hot_keys: int = 64
    max_windows: int | None = None
    hot_key_windows: int | None = None
    prune_keys_max: int = 1_000_000
    buckets: int | None = None
    plan: str = "auto"
    join_max_spine_rows: int = 16

    def __post_init__(self) -> None:
        if self.plan not in ("auto", "merge", "join"):
            raise ValueError(f"plan must be 'auto', 'merge' or 'join', got {self.plan!r}")
        check_knobs(self)


def check_knobs(tuning: Any) -> None:
    """Raise ``ValueError`` on a sampling or splitting knob out of range; shared by
    :class:`PitTuning` and the window engine's tuning (the same knobs, the same rules)."""
    if tuning.sample_rows is not None and tuning.sample_rows < 1:
        raise ValueError(f"sample_rows must be >= 1 (or None), got {tuning.sample_rows}")
    if tuning.hot_key_share is not None and not 0.0 <= tuning.hot_key_share <= 1.0:
        raise ValueError(f"hot_key_share must be in [0, 1], got {tuning.hot_key_share}")
    if tuning.max_hot_keys < 0 or tuning.prune_keys_max < 0:
        raise ValueError("max_hot_keys and prune_keys_max must be >= 0")
    for name in ("max_windows", "hot_key_windows", "buckets"):
        value = getattr(tuning, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
