"""spark-submit entry point: the training-serving parity gate before a deployment.

    spark-submit --packages io.delta:delta-spark_2.13:4.0.1 \\
        --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \\
        --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \\
        [--py-files seeknal_spark.zip] \\
        jobs/parity.py --config conf/example.yaml \\
        --schema /models/churn/feature_schema.json --table customer_features \\
        [--values --sample 1000]

Checks that the online table serves every feature of the model's schema with the same
type, feature-group version and transform hash; with ``--values``, also that the served
values equal the point-in-time join for a sample of keys.
Logs are JSON lines on stderr; the last line on stdout is a one-line JSON summary.
Exit code 0 on success, 1 when the job failed or parity does not hold (every problem is
named on stderr and in the summary), 2 for a bad argument or
configuration. Runs (through ``seeknal_spark.interfaces.jobs.run_job``)
``seeknal-spark parity`` (same options).
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
            f"parity: error: cannot import seeknal_spark ({exc}); install the wheel on the "
            "driver or pass it with spark-submit --py-files\n"
        )
        return 2
    return run_job("parity", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
