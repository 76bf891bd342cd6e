"""A child process of the two-writer race test: one write of a feature group into a new version.

Usage: python race_writer.py STORE BARRIER_DIR NAME FACTOR. Waits until every writer of the
race is ready (a barrier of files), writes, and prints one JSON line with the outcome.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark import Entity, FeatureGroup, FeatureStore
from seeknal_spark.errors import VersionConflictError
from seeknal_spark.session import configure_builder


def main() -> None:
    store_path, barrier, name, factor = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    builder = (
        SparkSession.builder.master("local[1]")
        .appName(f"race-{name}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.databricks.delta.snapshotPartitions", "1")
    )
    spark = configure_builder(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    txns = spark.createDataFrame(
        [("c1", datetime(2024, 1, 1, 9), 10.0), ("c2", datetime(2024, 1, 2, 9), 5.0)],
        "customer_id string, ts timestamp, amount double",
    )
    if factor == "1":

        def spend(txns: DataFrame) -> DataFrame:
            return txns.select("customer_id", F.col("ts").alias("day"), "amount")

    else:

        def spend(txns: DataFrame) -> DataFrame:
            return txns.select(
                "customer_id", F.col("ts").alias("day"), (F.col("amount") * 2).alias("amount")
            )

    store = FeatureStore(store_path, spark=spark)
    fg = FeatureGroup(
        "spend",
        Entity("customer", ["customer_id"]),
        "day",
        spend,
        inputs={"txns": txns},
        store=store,
    )
    fg.compute(datetime(2024, 1, 1), datetime(2024, 1, 3))[0].count()  # warm up before the race
    (barrier / f"{name}.ready").touch()
    deadline = time.monotonic() + 300
    while len(list(barrier.glob("*.ready"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        result = fg.write(datetime(2024, 1, 1), datetime(2024, 1, 3), version="v1")
        outcome = {
            "name": name,
            "landed": True,
            "delta_version": result.delta_version,
            "hash": fg.transform_hash(),
        }
    except VersionConflictError as exc:
        outcome = {"name": name, "landed": False, "error": str(exc), "hash": fg.transform_hash()}
    print(json.dumps(outcome), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
