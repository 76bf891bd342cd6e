"""spark-submit entry point: compare feature distributions, write an HTML drift report.

    spark-submit --packages io.delta:delta-spark_2.13:4.0.1 \\
        --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \\
        --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \\
        [--py-files seeknal_spark.zip] \\
        jobs/drift.py --reference /data/training/churn \\
        --current /data/serving_log --out /reports/drift.html [--exclude customer_id] \\
        [--threshold psi_alert=0.3] [--fail-on-alert] [--config conf/example.yaml]

PSI (reference quantile bins / categories), KS and null-rate change per feature, computed
with Spark aggregations; ``--config`` is optional (its Spark settings for a local run).
Logs are JSON lines on stderr; the last line on stdout is a one-line JSON summary.
Exit code 0 on success, 1 when the job failed (with ``--fail-on-alert``: when any
feature has a drift alert), 2 for a bad argument or
configuration. Runs ``seeknal-spark drift`` (same options).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the drift job with ``argv`` (default: the command line)."""
    try:
        from seeknal_spark.interfaces.cli import main as cli_main
    except ImportError as exc:
        print(
            f"drift: error: cannot import seeknal_spark ({exc}); install the wheel on "
            "the driver or pass it with spark-submit --py-files",
            file=sys.stderr,
        )
        return 2
    args = sys.argv[1:] if argv is None else argv
    return cli_main(["drift", "--log-format", "json", "--log-level", "INFO", *args])


if __name__ == "__main__":
    sys.exit(main())
