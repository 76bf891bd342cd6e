"""Backfills: a time range split into windows, written in order, resumable.

:func:`materialize_group` writes ``[start, end)`` of a feature group window by window and
skips a window the table already holds with the same transform hash (as recorded in the
Delta commit), so a re-run after a failure resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from seeknal_spark._timestamps import to_utc_datetime
from seeknal_spark.store.feature_group import FeatureGroup, WriteMode

__all__ = [
    "MaterializeSummary",
    "WindowResult",
    "materialize_group",
    "split_windows",
    "window_is_written",
]

logger = logging.getLogger(__name__)


def split_windows(
    start: datetime | date, end: datetime | date | None, interval: timedelta | None = None
) -> list[tuple[datetime, datetime | None]]:
    """``[start, end)`` as consecutive windows of ``interval`` (the last may be shorter).

    Without ``interval`` the whole range is one window; without ``end`` the single window
    is open-ended (``interval`` then needs an ``end``).

    Examples
    --------
    >>> windows = split_windows(date(2024, 1, 1), date(2024, 1, 4), timedelta(days=2))
    >>> [(s.day, e.day) for s, e in windows]
    [(1, 3), (3, 4)]
    """
    first = to_utc_datetime(start)
    last = None if end is None else to_utc_datetime(end)
    if last is not None and last <= first:
        raise ValueError(f"end {last.isoformat()} must be after start {first.isoformat()}")
    if interval is None:
        return [(first, last)]
    if last is None:
        raise ValueError("an --interval backfill needs an --end")
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {interval}")
    windows: list[tuple[datetime, datetime | None]] = []
    cursor = first
    while cursor < last:
        upper = min(cursor + interval, last)
        windows.append((cursor, upper))
        cursor = upper
    return windows


def _parse_instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    return to_utc_datetime(datetime.fromisoformat(text))


def window_is_written(
    history: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime | None,
    transform_hash: str,
) -> bool:
    """Whether the newest write touching ``[start, end)`` covered it with ``transform_hash``.

    ``history`` is :meth:`FeatureStore.history` (newest first). Commits without a
    recorded window (OPTIMIZE, VACUUM...) are ignored.
    """
    for entry in history:
        written_start = _parse_instant(entry.get("window_start"))
        if written_start is None:
            continue
        written_end = _parse_instant(entry.get("window_end"))
        overlaps = (end is None or written_start < end) and (
            written_end is None or start < written_end
        )
        if not overlaps:
            continue
        covers = written_start <= start and (
            written_end is None or (end is not None and end <= written_end)
        )
        return covers and entry.get("transform_hash") == transform_hash
    return False


@dataclass(frozen=True)
class WindowResult:
    """One window of a backfill: written (with its row count) or skipped."""

    feature_group: str
    version: str
    window_start: datetime
    window_end: datetime | None
    status: str  # "written" or "skipped"
    rows: int = 0
    delta_version: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class MaterializeSummary:
    """What a materialize run did; :meth:`to_dict` is the one-line JSON summary."""

    windows: tuple[WindowResult, ...] = ()
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        written = [w for w in self.windows if w.status == "written"]
        groups: dict[str, dict[str, Any]] = {}
        for w in self.windows:
            g = groups.setdefault(
                w.feature_group,
                {
                    "version": w.version,
                    "windows": 0,
                    "written": 0,
                    "rows": 0,
                    "delta_version": None,
                },
            )
            g["windows"] += 1
            if w.status == "written":
                g["written"] += 1
                g["rows"] += w.rows
                g["delta_version"] = w.delta_version
        return {
            "status": "ok",
            "rows": sum(w.rows for w in written),
            "windows": len(self.windows),
            "windows_written": len(written),
            "windows_skipped": len(self.windows) - len(written),
            "versions": {name: g["version"] for name, g in groups.items()},
            "feature_groups": groups,
            "duration_s": round(self.duration_s, 3),
        }


def materialize_group(
    feature_group: FeatureGroup,
    start: datetime | date,
    end: datetime | date | None = None,
    *,
    interval: timedelta | None = None,
    version: str = "v1",
    mode: WriteMode = "overwrite",
    force: bool = False,
    allow_empty: bool = False,
    on_window: Callable[[WindowResult], None] | None = None,
) -> list[WindowResult]:
    """Write ``[start, end)`` of a feature group window by window, in order.

    A window is skipped when the table's newest write touching it covered it with the
    same transform hash (see :func:`window_is_written`), unless ``force``; so running
    the same backfill again writes nothing, and after a failure it resumes from the
    first window not written. ``allow_empty`` lets an overwrite empty a window that holds
    rows (see :meth:`FeatureGroup.write`). ``on_window`` is called after each window.

    Returns
    -------
    list of WindowResult
        One per window, in order.
    """
    store = feature_group._require_store()
    windows = split_windows(start, end, interval)
    transform_hash = feature_group.transform_hash()
    history: list[dict[str, Any]] = []
    if not force and store.table_exists(feature_group.name, version):
        history = store.history(feature_group.name, version)
    results = []
    for index, (window_start, window_end) in enumerate(windows):
        began = time.monotonic()
        if not force and window_is_written(history, window_start, window_end, transform_hash):
            result = WindowResult(feature_group.name, version, window_start, window_end, "skipped")
            logger.info(
                "skip %s/%s window [%s, %s): already written with this transform",
                feature_group.name,
                version,
                window_start,
                window_end,
            )
        else:
            try:
                written = feature_group.write(
                    window_start, window_end, version=version, mode=mode, allow_empty=allow_empty
                )
            except Exception:
                logger.error(
                    "%s/%s window %d/%d [%s, %s) failed; %d window(s) before it are stored; "
                    "run again to resume from this window",
                    feature_group.name,
                    version,
                    index + 1,
                    len(windows),
                    window_start,
                    window_end,
                    index,
                )
                raise
            result = WindowResult(
                feature_group.name,
                version,
                window_start,
                window_end,
                "written",
                written.rows_written,
                written.delta_version,
                time.monotonic() - began,
            )
        results.append(result)
        if on_window is not None:
            on_window(result)
    return results
