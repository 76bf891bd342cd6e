"""The one wrapper behind ``jobs/*.py``: a spark-submit job is a CLI command with job defaults.

:func:`run_job` runs ``seeknal-spark <command>`` with JSON logs on stderr at INFO and no
progress display, so a job and the CLI share one implementation (``Project``): one line
on stderr for a bad or missing argument (exit 2), one line for a failure (exit 1), and a
one-line JSON summary last on stdout on success.

``export_online`` also takes explicit options instead of a project file
(``--store``, ``--feature-group NAME[:VERSION]``, ``--name``, ``--redis-url`` or
``--online-dir``): :func:`parse_export_args` and
:func:`~seeknal_spark.app.online_export.run_export`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from seeknal_spark.interfaces.cli import configure_logging, main, report
from seeknal_spark.interfaces.cli.common import Parser, UsageError, emit, parse_time

__all__ = ["JOBS", "parse_export_args", "run_job"]

#: job name -> the CLI command it runs
JOBS = {
    "materialize": "materialize",
    "build_training": "train",
    "export_online": "serve",
    "parity": "parity",
    "drift": "drift",
}
_NO_PROGRESS = {"materialize", "serve"}


def run_job(job: str, argv: Sequence[str]) -> int:
    """Run the job ``job`` (a key of :data:`JOBS`) with its command line ``argv``.

    Returns
    -------
    int
        The exit code: 0 ok, 1 failed, 2 bad argument or configuration.
    """
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; jobs: {sorted(JOBS)}")
    args = list(argv)
    if job == "export_online" and not any(
        a == "--config" or a.startswith("--config=") for a in args
    ):
        return _export_without_project(args)
    command = JOBS[job]
    extra = ["--no-progress"] if command in _NO_PROGRESS and "--no-progress" not in args else []
    return main([command, "--log-format", "json", "--log-level", "INFO", *extra, *args])


def parse_export_args(argv: Sequence[str]) -> argparse.Namespace:
    """The explicit command line of ``jobs/export_online.py`` (without ``--config``).

    Raises
    ------
    UsageError
        For a bad or missing argument (one line, see ``--help``).
    """
    parser = Parser(
        prog="export_online",
        description="Export feature groups to an online table (or use --config FILE).",
    )
    parser.add_argument("--store", required=True, help="FeatureStore root path")
    parser.add_argument(
        "--feature-group",
        dest="feature_groups",
        action="append",
        required=True,
        metavar="NAME[:VERSION]",
        help="a feature group to serve (default version: the latest registered); repeat",
    )
    parser.add_argument("--name", required=True, help="online table name")
    parser.add_argument("--redis-url", default=None, help="redis:// or rediss:// URL")
    parser.add_argument(
        "--redis-password-env", default=None, help="environment variable holding the password"
    )
    parser.add_argument("--online-dir", default=None, help="folder of the embedded store")
    parser.add_argument("--as-of", default=None, help="ISO-8601 time (default now, UTC)")
    parser.add_argument(
        "--expire-keys", action="store_true", help="keys expire at as_of + the TTL of their group"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="INFO logs on stderr")
    args = parser.parse_args(list(argv))
    args.as_of = None if args.as_of is None else parse_time(args.as_of, "--as-of")
    return args


def _export_without_project(argv: list[str]) -> int:
    from seeknal_spark.app.online_export import run_export

    try:
        args = parse_export_args(argv)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except UsageError as exc:
        return _fail(exc)
    try:
        with configure_logging("INFO" if args.verbose else None, "json"):
            summary = run_export(
                store_path=args.store,
                feature_groups=args.feature_groups,
                name=args.name,
                redis_url=args.redis_url,
                redis_password_env=args.redis_password_env,
                online_dir=args.online_dir,
                as_of=args.as_of,
                expire_keys=args.expire_keys,
                progress=False,
            )
    except Exception as exc:
        return _fail(exc)
    emit(
        {
            "command": "export_online",
            "status": "ok",
            "message": str(summary),
            "table": summary.table,
            "generation": summary.generation,
            "keys_written": summary.keys_written,
            "sink": summary.sink,
            "as_of": summary.as_of,
            "lookups": {g: {"version": v, "keys": n} for g, v, n in summary.lookups},
            "duration_s": round(summary.seconds, 3),
        }
    )
    return 0


def _fail(exc: Exception) -> int:
    code, line = report(exc)
    logging.getLogger(__name__).debug("export_online failed", exc_info=exc)
    sys.stderr.write(line + "\n")
    return code
