"""A one-line progress display for long jobs (backfills, exports), drawn on a terminal only.

``Progress`` redraws a single line on its stream (stderr by default) when that stream is
a TTY, and stays silent otherwise (logs, CI, spark-submit into a file)::

    materialize 12/90 windows (3 skipped)  rows 48,120  elapsed 0:00:41  remaining ~0:04:27

The remaining time is the mean time of the units of work done so far (skipped units
excluded) times the units left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TextIO

__all__ = ["Progress", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``H:MM:SS`` for a number of seconds (rounded)."""
    return str(timedelta(seconds=round(max(0.0, seconds))))


class Progress:
    """Windows (or any units) done out of a total, rows, elapsed and remaining time.

    Parameters
    ----------
    total:
        How many units the job has.
    label:
        What is shown first on the line (``"materialize"``).
    unit:
        The name of a unit (``"windows"``).
    stream:
        Where to draw; ``sys.stderr`` by default.
    enabled:
        Force drawing on or off; by default on only when ``stream`` is a TTY.
    clock:
        A monotonic clock in seconds (for tests).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with Progress(2, stream=out, enabled=True, clock=iter([0.0, 1.0, 2.0, 3.0]).__next__) as p:
    ...     p.advance(rows=10)
    ...     p.advance(rows=5)
    >>> out.getvalue().splitlines()[-1].strip()
    'work 2/2 windows  rows 15  elapsed 0:00:03  remaining ~0:00:00'
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "work",
        unit: str = "windows",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if total < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._clock = clock or time.monotonic
        self._started = self._clock()
        self._busy_seconds = 0.0
        self._last = self._started
        self.done = 0
        self.skipped = 0
        self.rows = 0
        self._width = 0

    def __enter__(self) -> Progress:
        self.draw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, *, rows: int = 0, skipped: bool = False) -> None:
        """Count one unit done (``skipped`` when it needed no work) and redraw."""
        now = self._clock()
        if not skipped:
            self._busy_seconds += now - self._last
        self._last = now
        self.done += 1
        self.skipped += skipped
        self.rows += rows
        self.draw(now)

    def remaining_seconds(self) -> float | None:
        """Estimated seconds left, or None before any unit was really worked on."""
        worked = self.done - self.skipped
        if worked <= 0:
            return None
        return self._busy_seconds / worked * max(0, self.total - self.done)

    def line(self, now: float | None = None) -> str:
        """The text of the display."""
        now = self._clock() if now is None else now
        skipped = f" ({self.skipped} skipped)" if self.skipped else ""
        remaining = self.remaining_seconds()
        left = "?" if remaining is None else "~" + format_seconds(remaining)
        return (
            f"{self.label} {self.done}/{self.total} {self.unit}{skipped}  rows {self.rows:,}  "
            f"elapsed {format_seconds(now - self._started)}  remaining {left}"
        )

    def draw(self, now: float | None = None) -> None:
        """Redraw the line (no-op when disabled)."""
        if not self.enabled:
            return
        text = self.line(now)
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + padding)
        self.stream.flush()

    def close(self) -> None:
        """End the line so later output starts on a fresh one."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
