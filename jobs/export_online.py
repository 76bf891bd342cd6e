"""spark-submit entry point: export feature groups' latest values to an online table.

Example::

    spark-submit jobs/export_online.py --store /data/feature_store \\
        --feature-group customer_features:v1 --feature-group product_features:v2 \\
        --name churn_features_online --redis-url redis://redis.internal:6379/0 \\
        --redis-password-env REDIS_PASSWORD

Or, from a project config (the lookups and sink of the YAML, as ``seeknal-spark serve``)::

    spark-submit jobs/export_online.py --config conf/example.yaml --as-of 2024-03-31

Without ``--redis-url`` the table goes to the embedded SQLite store (``--online-dir``,
default ``$SEEKNAL_ONLINE_DIR`` or ``~/.seeknal/online``), which suits local Spark only.
The job prints one summary line (keys written, seconds) on stdout and exits non-zero
with the error's message on stderr when anything fails; the table keeps serving its
previous snapshot in that case.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import datetime

from seeknal_spark.errors import SeeknalError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The job's command line."""
    parser = argparse.ArgumentParser(
        prog="export_online", description="Export feature groups to an online table."
    )
    parser.add_argument("--store", required=True, help="FeatureStore root path")
    parser.add_argument(
        "--feature-group",
        dest="feature_groups",
        action="append",
        required=True,
        metavar="NAME[:VERSION]",
        help="a feature group to serve (version default v1); repeat for several",
    )
    parser.add_argument("--name", required=True, help="online table name")
    parser.add_argument("--redis-url", default=None, help="redis:// or rediss:// URL")
    parser.add_argument(
        "--redis-password-env", default=None, help="environment variable holding the password"
    )
    parser.add_argument("--online-dir", default=None, help="folder of the embedded store")
    parser.add_argument(
        "--as-of", default=None, type=datetime.fromisoformat, help="ISO-8601 time (default now)"
    )
    parser.add_argument(
        "--expire-keys", action="store_true", help="keys expire at as_of + the TTL of their group"
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export; return the process exit code.

    With ``--config conf/<project>.yaml`` the project's lookups and online sink are used
    (the same as ``seeknal-spark serve``); otherwise the explicit options below.
    """
    raw = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--config" or a.startswith("--config=") for a in raw):
        from seeknal_spark.interfaces.cli import main as cli_main

        return cli_main(["serve", "--log-format", "json", "--log-level", "INFO", *raw])
    args = parse_args(raw)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from seeknal_spark.app.online_export import run_export

    try:
        summary = run_export(
            store_path=args.store,
            feature_groups=args.feature_groups,
            name=args.name,
            redis_url=args.redis_url,
            redis_password_env=args.redis_password_env,
            online_dir=args.online_dir,
            as_of=args.as_of,
            expire_keys=args.expire_keys,
        )
    except SeeknalError as exc:
        print(f"export_online: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
