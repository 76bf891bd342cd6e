"""``seeknal-spark serve``: export the project's lookups to the online store (``Project.serve``)."""

from __future__ import annotations

import argparse

from seeknal_spark.interfaces.cli.common import emit, load_project, parse_time

__all__ = ["add_arguments", "online_arguments", "run"]


def online_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", help="online table name (default: online.table of the file)")
    parser.add_argument(
        "--sink", choices=("embedded", "redis"), help="online sink (default: online.sink)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    online_arguments(parser)
    parser.add_argument(
        "--as-of",
        help="snapshot time, e.g. 2024-03-31 (default: now, UTC); features older "
        "than their TTL at that time are not served",
    )
    parser.add_argument(
        "--expire-keys", action="store_true", help="keys expire at as_of + their group's TTL"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress lines even on a terminal"
    )


def run(args: argparse.Namespace) -> int:
    """Export the snapshot and print the summary."""
    as_of = None if args.as_of is None else parse_time(args.as_of, "--as-of")
    result = load_project(args).serve(
        table=args.table,
        sink=args.sink,
        as_of=as_of,
        expire_keys=args.expire_keys,
        progress=False if args.no_progress else None,
    )
    emit(result.to_dict())
    return 0
