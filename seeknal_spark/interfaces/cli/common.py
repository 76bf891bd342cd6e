"""What every subcommand shares: usage errors, time and duration arguments, logging, output.

Commands write to stdout with :func:`emit` (one JSON line) or :func:`write_line`; logs go
to stderr through :func:`configure_logging`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from seeknal_spark._timestamps import to_utc_datetime
from seeknal_spark.app.config import parse_duration

if TYPE_CHECKING:
    from seeknal_spark.app.project import Project

__all__ = [
    "DEFAULT_CONFIG",
    "PROG",
    "Command",
    "Parser",
    "UsageError",
    "add_common",
    "configure_logging",
    "duration",
    "emit",
    "load_project",
    "one_line",
    "parse_time",
    "print_table",
    "write_line",
]

DEFAULT_CONFIG = "conf/example.yaml"
PROG = "seeknal-spark"


class UsageError(Exception):
    """A bad command-line argument (exit code 2)."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one-line :class:`UsageError` s, not ``SystemExit``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line help, argument declarations and runner."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    config: str = "required"  # "required" (with a default), "optional" or "none"


def parse_time(text: str, option: str = "time") -> datetime:
    """A UTC datetime from ``2024-01-01``, ``2024-01-01T06:00`` or ``...T06:00:00+02:00``.

    Naive values are UTC.

    Examples
    --------
    >>> parse_time("2024-01-01T06:00+02:00").isoformat()
    '2024-01-01T04:00:00+00:00'
    """
    try:
        return to_utc_datetime(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise UsageError(
            f"{option}: expected a date or ISO timestamp like 2024-01-01 or "
            f"2024-01-01T06:00:00Z, got {text!r}"
        ) from None


def duration(text: str, option: str) -> timedelta:
    """``text`` as a duration (``1d``, ``12h``), or a :class:`UsageError` naming ``option``."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def add_common(parser: argparse.ArgumentParser, config: str = "required") -> None:
    """``--config`` (``required``: with a default, ``optional``, ``none``) and the log options."""
    if config == "optional":
        parser.add_argument(
            "--config",
            default=None,
            metavar="FILE",
            help="project YAML, for its Spark settings (default: none)",
        )
    elif config == "required":
        parser.add_argument(
            "--config",
            default=DEFAULT_CONFIG,
            metavar="FILE",
            help=f"project YAML (default: {DEFAULT_CONFIG})",
        )
    parser.add_argument(
        "--remote",
        default=None,
        metavar="URL",
        help="run on a Spark Connect server, sc://host:port (default: $SPARK_REMOTE)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--log-level", default=None, metavar="LEVEL", help="DEBUG, INFO, WARNING (default) or ERROR"
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per log line (structured logs for jobs)",
    )


class _JsonFormatter(logging.Formatter):
    _STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@contextlib.contextmanager
def configure_logging(level: str | None = None, fmt: str = "text") -> Iterator[None]:
    """Send log records to stderr as text or one JSON object per line, while in the block.

    The root logger's level and handlers are restored afterwards, so calling the CLI in
    process (tests, notebooks, Airflow) leaves logging as it was.
    """
    name = (level or "WARNING").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        raise UsageError(f"--log-level: unknown level {level!r}; use DEBUG, INFO, WARNING, ERROR")
    root = logging.getLogger()
    py4j = logging.getLogger("py4j")
    saved = (root.level, py4j.level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(numeric)
    py4j.setLevel(max(numeric, logging.WARNING))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        py4j.setLevel(saved[1])


def load_project(args: argparse.Namespace) -> Project:
    """The :class:`~seeknal_spark.app.project.Project` of ``--config``."""
    from seeknal_spark.app.project import Project

    return Project.load(args.config)


def write_line(text: str) -> None:
    """One line of output on stdout, flushed."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit(payload: dict[str, Any]) -> None:
    """The one-line JSON summary of a command (keys sorted)."""
    write_line(json.dumps(payload, default=str, sort_keys=True))


def print_table(rows: list[list[str]]) -> None:
    """Rows as left-aligned columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        write_line("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def one_line(exc: BaseException) -> str:
    """The first line of an error: the message alone for our errors, else with its type."""
    from seeknal_spark.errors import SeeknalError

    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    if isinstance(exc, (SeeknalError, UsageError)):
        return first
    return f"{type(exc).__name__}: {first}"
