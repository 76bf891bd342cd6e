"""spark-submit entry point: build a point-in-time training set from a spine.

    spark-submit --packages io.delta:delta-spark_2.13:4.0.1 \\
        --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \\
        --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \\
        [--py-files seeknal_spark.zip] \\
        jobs/build_training.py --config conf/example.yaml \\
        [--spine churn_spine] [--output /data/training/churn] [--format delta] \\
        [--manifest /data/training/churn.manifest.json]

Joins the project's ``lookups`` point-in-time onto the spine (an input of the project file
or a path), writes the training set to ``--output`` (Parquet or Delta) and, beside it,
``<output>.manifest.json`` (the Delta versions read; pass it back with ``--manifest`` to
rebuild the same rows) and ``<output>.schema.json`` (the feature schema).
Logs are JSON lines on stderr; the last line on stdout is a one-line JSON summary.
Exit code 0 on success, 1 when the job failed, 2 for a bad argument or
configuration. Runs (through ``seeknal_spark.interfaces.jobs.run_job``)
``seeknal-spark train`` (same options).
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
            f"build_training: error: cannot import seeknal_spark ({exc}); install the wheel on the "
            "driver or pass it with spark-submit --py-files\n"
        )
        return 2
    return run_job("build_training", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
