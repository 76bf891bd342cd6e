"""``seeknal-spark train``: a point-in-time training set with its manifest (``Project.train``)."""

from __future__ import annotations

import argparse

from seeknal_spark.interfaces.cli.common import emit, load_project, parse_time

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``train``."""
    parser.add_argument(
        "--spine", help="an input name of the project file or a path (default: training.spine)"
    )
    parser.add_argument("--spine-format", help="format of a spine path (default: from the name)")
    parser.add_argument(
        "--output", help="where to write the training set (default: training.output)"
    )
    parser.add_argument(
        "--format", choices=("parquet", "delta"), help="default: training.format (parquet)"
    )
    parser.add_argument(
        "--manifest",
        metavar="FILE",
        help="rebuild exactly the training set of this manifest (same Delta versions)",
    )
    parser.add_argument("--feature-start-time", help="ignore feature rows older than this")


def run(args: argparse.Namespace) -> int:
    """Write the training set, its ``.manifest.json`` and ``.schema.json``; print the summary."""
    start = (
        None
        if args.feature_start_time is None
        else parse_time(args.feature_start_time, "--feature-start-time")
    )
    result = load_project(args).train(
        spine=args.spine,
        spine_format=args.spine_format,
        output=args.output,
        fmt=args.format,
        manifest=args.manifest,
        feature_start_time=start,
    )
    emit(result.to_dict())
    return 0
