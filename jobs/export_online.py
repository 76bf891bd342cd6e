"""spark-submit entry point: export feature groups' latest values to an online table.

From a project config (the lookups and sink of the YAML; runs ``seeknal-spark serve``)::

    spark-submit jobs/export_online.py --config conf/example.yaml --as-of 2024-03-31

Or with explicit options::

    spark-submit jobs/export_online.py --store /data/feature_store \\
        --feature-group customer_features:v1 --feature-group product_features \\
        --name churn_features_online --redis-url redis://redis.internal:6379/0 \\
        --redis-password-env REDIS_PASSWORD

A group without a version is served at its latest registered version. Without
``--redis-url`` the table goes to the embedded SQLite store (``--online-dir``, default
``$SEEKNAL_ONLINE_DIR`` or ``~/.seeknal/online``), which suits local Spark only.
The last line on stdout is a one-line JSON summary; a bad argument or a failure prints
one line on stderr and exits non-zero (2 for the user's input, 1 for a failed job), and
the table keeps serving its previous snapshot.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job with ``argv`` (default: the command line); return the exit code."""
    try:
        from seeknal_spark.interfaces.jobs import run_job
    except ImportError as exc:
        sys.stderr.write(
            f"export_online: error: cannot import seeknal_spark ({exc}); install the wheel on the "
            "driver or pass it with spark-submit --py-files\n"
        )
        return 2
    return run_job("export_online", sys.argv[1:] if argv is None else argv)


def parse_args(argv: Sequence[str]) -> object:
    """The explicit (no ``--config``) command line, parsed."""
    from seeknal_spark.interfaces.jobs import parse_export_args

    return parse_export_args(argv)


if __name__ == "__main__":
    sys.exit(main())
