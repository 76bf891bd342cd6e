"""``seeknal-spark materialize``: backfill feature groups window by window.

A thin call into :meth:`seeknal_spark.app.project.Project.materialize`.
"""

from __future__ import annotations

import argparse
import time

from seeknal_spark._progress import Progress
from seeknal_spark.app.backfill import MaterializeSummary, WindowResult, split_windows
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.interfaces.cli.common import (
    UsageError,
    duration,
    emit,
    load_project,
    one_line,
    parse_time,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``materialize``."""
    parser.add_argument(
        "--feature-group",
        "-g",
        action="append",
        dest="feature_groups",
        metavar="NAME",
        help="a feature group to write (repeat for several; default: all, in file order)",
    )
    parser.add_argument("--start", required=True, help="window start, e.g. 2024-01-01 (UTC)")
    parser.add_argument("--end", help="window end, exclusive (default: open-ended)")
    parser.add_argument(
        "--interval", help="split [start, end) into windows of this length (1d, 12h, 7d)"
    )
    parser.add_argument("--version", help="feature-group version (default: from the file)")
    parser.add_argument(
        "--mode",
        choices=("overwrite", "append", "merge"),
        default="overwrite",
        help="how each window is written (default: overwrite)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rewrite windows already written with the same transform",
    )
    parser.add_argument(
        "--allow-empty",
        action="store_true",
        help="let an overwrite empty a window that holds rows (refused by default)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress line even on a terminal"
    )


def run(args: argparse.Namespace) -> int:
    """Write the windows; the JSON summary is printed even when a window fails."""
    began = time.monotonic()
    start = parse_time(args.start, "--start")
    end = None if args.end is None else parse_time(args.end, "--end")
    interval = None if args.interval is None else duration(args.interval, "--interval")
    if args.version is not None:
        validate_name(args.version, "version")
    try:
        windows_per_group = len(split_windows(start, end, interval))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    project = load_project(args)
    names = args.feature_groups or list(project.feature_groups)
    for name in names:
        project.feature_group(name)
    done: list[WindowResult] = []
    context = {
        "command": "materialize",
        "project": project.config.name,
        "start": start.isoformat(),
        "end": None if end is None else end.isoformat(),
        "interval": args.interval,
        "mode": args.mode,
        "force": args.force,
    }
    progress = Progress(
        windows_per_group * len(names),
        label="materialize",
        enabled=False if args.no_progress else None,
    )

    def on_window(result: WindowResult) -> None:
        done.append(result)
        progress.advance(rows=result.rows, skipped=result.status == "skipped")

    try:
        with progress:
            summary = project.materialize(
                start,
                end,
                feature_groups=names,
                interval=interval,
                version=args.version,
                mode=args.mode,
                force=args.force,
                allow_empty=args.allow_empty,
                on_window=on_window,
            )
    except Exception as exc:
        partial = MaterializeSummary(tuple(done), time.monotonic() - began).to_dict()
        partial.update(context, status="error", error=one_line(exc))
        emit(partial)
        raise
    payload = summary.to_dict()
    payload.update(context)
    payload["duration_s"] = round(time.monotonic() - began, 3)
    emit(payload)
    return 0
