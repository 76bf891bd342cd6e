"""spark-submit entry point: materialize feature groups of a project for a time range.

    spark-submit --packages io.delta:delta-spark_2.13:4.0.1 \\
        --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \\
        --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \\
        [--py-files seeknal_spark.zip] \\
        jobs/materialize.py --config conf/example.yaml --start 2024-01-01 --end 2024-02-01 \\
        [--feature-group customer_spend] [--interval 1d] [--version v1] [--force]

Logs are JSON lines on stderr (spark-submit merges a Python driver's stderr into its
stdout); the last line on stdout is a one-line JSON summary (status, rows, windows,
versions, duration; ``"status": "error"`` and the windows done so far when it failed).
Exit code 0 on success, 1 when the job failed, 2 for a bad argument or configuration.
Runs
``seeknal-spark materialize`` (same options), so a re-run skips windows already
written with the same transform and resumes after a failure.
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
            f"materialize: error: cannot import seeknal_spark ({exc}); install the wheel on the "
            "driver or pass it with spark-submit --py-files\n"
        )
        return 2
    return run_job("materialize", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
