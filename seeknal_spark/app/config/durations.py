"""Durations in project files and on the command line: ``30d``, ``12h``, ``1d12h``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration"]

_DURATION = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """A positive duration from text like ``"30d"``, ``"12h"``, ``"1d12h"``, ``"2w"``, ``"90s"``.

    Examples
    --------
    >>> parse_duration("1d12h")
    datetime.timedelta(days=1, seconds=43200)

    Raises
    ------
    ValueError
        When the text is not made of ``<number><unit>`` parts (units w, d, h, m, s) or
        the duration is zero.
    """
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"expected a duration like '30d', '12h', '15m' or '1d12h', got {text!r}")
    total = timedelta()
    for number, unit in parts:
        total += timedelta(**{_DURATION_UNITS[unit]: int(number)})
    if total <= timedelta(0):
        raise ValueError(f"a duration must be positive, got {text!r}")
    return total
