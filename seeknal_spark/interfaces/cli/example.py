"""``seeknal-spark run-example``: the churn example end to end."""

from __future__ import annotations

import argparse
import os

from seeknal_spark.interfaces.cli.common import duration, emit, parse_time, write_line

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        default=os.path.join("runs", "example"),
        help="folder for the generated data, store, model and reports (default: runs/example)",
    )
    parser.add_argument("--customers", type=int, default=500, help="number of customers")
    parser.add_argument("--days", type=int, default=90, help="number of days of data")
    parser.add_argument("--start", default="2024-01-01", help="first day of data")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--interval", help="write windows of this length (default: one)")
    parser.add_argument("--customer", help="customer to predict for (default: picked)")
    parser.add_argument("--trees", type=int, default=100, help="trees of the random forest")


def run(args: argparse.Namespace) -> int:
    from seeknal_spark.example import run_example
    from seeknal_spark.example.run import format_summary

    summary = run_example(
        args.workdir,
        n_customers=args.customers,
        n_days=args.days,
        start=parse_time(args.start, "--start").date(),
        seed=args.seed,
        interval=None if args.interval is None else duration(args.interval, "--interval"),
        customer_id=args.customer,
        n_estimators=args.trees,
    )
    write_line(format_summary(summary))
    emit(summary)
    return 0
