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
configuration. Runs (through ``seeknal_spark.interfaces.jobs.run_job``)
``seeknal-spark drift`` (same options).
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
            f"drift: error: cannot import seeknal_spark ({exc}); install the wheel on the "
            "driver or pass it with spark-submit --py-files\n"
        )
        return 2
    return run_job("drift", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
