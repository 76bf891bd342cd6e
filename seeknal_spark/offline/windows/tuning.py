"""The knobs of the window aggregation's plan (:class:`WindowTuning`): never the result."""

from __future__ import annotations

from dataclasses import dataclass

from seeknal_spark.offline.pit.tuning import PitTuning, check_knobs

__all__ = ["WindowTuning"]


@dataclass(frozen=True)
class WindowTuning:
    """Knobs of :func:`~seeknal_spark.offline.windows.window_aggregates`; they never change
    the result, only how it is computed.

    Parameters
    ----------
    sample_rows:
        Spine rows and events each read to find hot keys: the first rows of their
        partitions (a biased sample when files are sorted by key: a missed hot key only
        costs time). None: every row.
    hot_key_share:
        A key holding more than this share of the sampled spine rows or events is split
        into time ranges. None: ``1 / (2 * shuffle partitions)``. ``0.0`` splits every
        sampled key (for tests).
    max_hot_keys:
        At most this many keys are split (their ranges are broadcast).
    max_windows:
        At most this many time ranges per hot key. None: ``4 * shuffle partitions``.
    hot_key_windows:
        Split every hot key into this many time ranges (for tests; fewer when its sample
        has fewer distinct times). None: from its share.
    prune_keys_max:
        Events are pruned per key (a broadcast table of each spine key's first and last
        spine time) when the spine has at most this many distinct keys (estimated).
        0 disables it; events are always pruned to the spine's whole time span.
    buckets:
        Hash buckets the keys that are not hot fall into (each bucket is aggregated in one
        Python call, so its rows must fit in a worker's memory). None: ``4 * shuffle
        partitions``, at least 8.

    Examples
    --------
    >>> WindowTuning(hot_key_share=0.0, hot_key_windows=4).hot_key_windows
    4
    >>> WindowTuning(buckets=0)
    Traceback (most recent call last):
    ...
    ValueError: buckets must be >= 1, got 0
    """

    sample_rows: int | None = 50_000
    hot_key_share: float | None = None
    max_hot_keys: int = 64
    max_windows: int | None = None
    hot_key_windows: int | None = None
    prune_keys_max: int = 1_000_000
    buckets: int | None = None

    def __post_init__(self) -> None:
        check_knobs(self)

    def sampling(self) -> PitTuning:
        """The same sampling knobs for the as-of engine's hot-key sampler."""
        return PitTuning(
            sample_rows=self.sample_rows,
            hot_key_share=self.hot_key_share,
            max_hot_keys=self.max_hot_keys,
        )
