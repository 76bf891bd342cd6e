"""The ``seeknal-spark`` command line: one thin module per command group over ``Project``.

Subcommands read a project file (``--config conf/example.yaml`` by default)::

    seeknal-spark materialize --start 2024-01-01 --end 2024-03-01 --interval 1d
    seeknal-spark list
    seeknal-spark describe customer_spend
    seeknal-spark history customer_spend --version v1
    seeknal-spark train --output runs/training.parquet
    seeknal-spark serve --as-of 2024-03-31
    seeknal-spark parity --schema model/feature_schema.json --table customer_features --values
    seeknal-spark drift --reference train.parquet --current served.parquet --out drift.html
    seeknal-spark run-example

Every command is a thin call into :class:`~seeknal_spark.app.project.Project` (the same
code a notebook, ``jobs/`` and Airflow run) and prints a one-line JSON summary last.

Exit codes: 0 ok; 2 for the user's input (a bad argument, a bad project file: a
:class:`~seeknal_spark.errors.ConfigurationError`); 1 for a failed job (any other
:class:`~seeknal_spark.errors.SeeknalError`, a Spark or I/O failure) and for an internal
error (any other exception, reported as ``internal error: ...``). Errors print one line
on stderr; ``--debug`` shows the traceback instead.

Adding a subcommand: a module with ``add_arguments(parser)`` and ``run(args) -> int``, and
a :class:`Command` entry in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from seeknal_spark.errors import ConfigurationError, SeeknalError
from seeknal_spark.interfaces.cli import (
    example,
    materialize,
    monitoring,
    registry,
    serving,
    training,
)
from seeknal_spark.interfaces.cli.common import (
    PROG,
    Command,
    Parser,
    UsageError,
    add_common,
    configure_logging,
    one_line,
    parse_time,
)

__all__ = [
    "COMMANDS",
    "Command",
    "build_parser",
    "configure_logging",
    "main",
    "parse_time",
    "report",
]

logger = logging.getLogger("seeknal_spark.interfaces.cli")

#: Every subcommand, in the order ``--help`` lists them.
COMMANDS: list[Command] = [
    Command(
        "materialize",
        "compute feature groups for a time range and store them",
        materialize.add_arguments,
        materialize.run,
    ),
    Command(
        "list",
        "list the project's feature groups and their stored versions",
        registry.list_arguments,
        registry.list_,
    ),
    Command(
        "describe",
        "show a feature group's definition (JSON)",
        registry.describe_arguments,
        registry.describe,
    ),
    Command(
        "history",
        "show the Delta write history of a feature group version",
        registry.history_arguments,
        registry.history,
    ),
    Command(
        "train",
        "build a point-in-time training set from a spine, with its manifest",
        training.add_arguments,
        training.run,
    ),
    Command(
        "serve",
        "export the project's lookups to the online store",
        serving.add_arguments,
        serving.run,
    ),
    Command(
        "parity",
        "check an online table can serve a model (exit 1 when it cannot)",
        monitoring.parity_arguments,
        monitoring.parity,
    ),
    Command(
        "drift",
        "compare reference and current feature distributions, write HTML",
        monitoring.drift_arguments,
        monitoring.drift,
        config="optional",
    ),
    Command(
        "run-example",
        "run the churn example end to end (data, train, serve, parity, predict, drift)",
        example.add_arguments,
        example.run,
        config="none",
    ),
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`COMMANDS`."""
    from seeknal_spark import __version__

    parser = Parser(
        prog=PROG,
        description="Spark feature store: feature groups on versioned Delta tables.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        add_common(child, command.config)
        command.add_arguments(child)
        child.set_defaults(run=command.run)
    return parser


def _is_failure(exc: Exception) -> bool:
    """A failed job rather than a bug: our errors, Spark's (JVM or Python side) and I/O."""
    origin = type(exc).__module__.split(".")[0]
    return isinstance(exc, (SeeknalError, OSError)) or origin in ("pyspark", "py4j")


def report(exc: Exception) -> tuple[int, str]:
    """The exit code and the one line printed on stderr for an error ``exc``.

    Examples
    --------
    >>> report(ConfigurationError("conf.yaml:3: store: is required"))
    (2, 'seeknal-spark: error: conf.yaml:3: store: is required')
    >>> report(KeyError("lookups"))
    (1, "seeknal-spark: internal error: KeyError: 'lookups' (run with --debug for the traceback)")
    """
    if isinstance(exc, (UsageError, ConfigurationError)):
        return 2, f"{PROG}: error: {one_line(exc)}"
    if _is_failure(exc):
        return 1, f"{PROG}: error: {one_line(exc)}"
    return 1, f"{PROG}: internal error: {one_line(exc)} (run with --debug for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure or internal error, 2 bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    if getattr(args, "remote", None):
        # get_spark() reads it: every command's session is then a Spark Connect one
        os.environ["SPARK_REMOTE"] = args.remote
    try:
        with configure_logging(args.log_level, args.log_format):
            import seeknal_spark

            logger.info(
                "seeknal-spark %s %s (package at %s)",
                seeknal_spark.__version__,
                args.command,
                os.path.dirname(seeknal_spark.__file__),
            )
            try:
                return int(args.run(args))
            except Exception as exc:
                if not isinstance(exc, (SeeknalError, UsageError)):
                    logger.debug("unexpected error", exc_info=True)
                raise
    except Exception as exc:
        if args.debug:
            raise
        code, line = report(exc)
        sys.stderr.write(line + "\n")
        return code


if __name__ == "__main__":
    sys.exit(main())
