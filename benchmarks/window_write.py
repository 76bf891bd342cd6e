"""Benchmark: the cost of writing one more day of events to an event group.

Usage::

    python benchmarks/window_write.py --events 10000000 --days 365 --keys 100000

Generates ``--events`` raw events over ``--days`` days (``entity_id``, ``event_time``,
``amount``, ``merchant``; uniform keys), stored as Parquet partitioned by day, the way raw
events usually land. An event group with the aggregations of ``window_agg.py``
(count/sum/avg/max of ``amount``, distinct ``merchant``, over 1d/7d/30d) is written up to
the last day in one untimed write. Then, in turn (``--repeat`` times, best of each):

- ``ours``: ``group.write(day, day + 1)``: the group's Delta write of the last day's events
  (the protocol's checks, its write id and commit included), with the day read through
  the group's input (the whole partitioned folder, filtered on ``event_time``);
- ``baseline``: reading that day's events alone (its partition folder) and appending them
  to a Delta table: the least any store of that day can cost.

Prints both times, the ratio (target: at most 1.5x) and a one-line JSON. Also prints the
events in the day against all events, to show the write does not grow with the longest
window (30d) or the history. Compare ratios from one run: timings here are noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seeknal_spark import Aggregation, Entity, FeatureGroup, FeatureStore
from seeknal_spark.session import configure_builder

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAY_S = 86_400


def _spark() -> SparkSession:
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("window-write-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "4g")
    )
    spark = configure_builder(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _aggregations() -> list[Aggregation]:
    windows = ["1d", "7d", "30d"]
    return [
        Aggregation("amount", "count", windows),
        Aggregation("amount", "sum", windows),
        Aggregation("amount", "avg", windows),
        Aggregation("amount", "max", windows),
        Aggregation("merchant", "approx_count_distinct", windows),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spark = _spark()
    folder = tempfile.mkdtemp(prefix="seeknal-window-write-")
    try:
        raw = f"{folder}/raw.parquet"  # the suffix tells the input policy it is Parquet
        span = args.days * DAY_S
        events = spark.range(args.events, numPartitions=16).select(
            F.concat(F.lit("k"), (F.rand(1) * args.keys).cast("long").cast("string")).alias(
                "entity_id"
            ),
            F.timestamp_seconds(
                F.lit(int(START.timestamp())) + (F.rand(2) * span).cast("long")
            ).alias("event_time"),
            F.round(-F.log(F.rand(3)) * 50.0, 2).alias("amount"),
            F.floor(F.rand(4) * 1_000).cast("long").alias("merchant"),
        )
        day_col = F.floor(F.unix_seconds("event_time") / DAY_S).cast("long").alias("day")
        events.select("*", day_col).repartition("day").sortWithinPartitions(
            "event_time"
        ).write.mode("overwrite").partitionBy("day").parquet(raw)
        last = START + timedelta(days=args.days - 1)
        last_day = int(last.timestamp()) // DAY_S
        store = FeatureStore(f"{folder}/store", spark=spark)
        group = FeatureGroup(
            "txn_windows",
            Entity("customer", ["entity_id"]),
            "event_time",
            inputs={"txns": raw},
            aggregations=_aggregations(),
            store=store,
        )
        group.write(START, last, version="v1")  # the history, untimed
        day_rows = spark.read.parquet(f"{raw}/day={last_day}").count()
        ours, base = float("inf"), float("inf")
        for i in range(args.repeat):
            t0 = time.perf_counter()
            group.write(last, last + timedelta(days=1), version="v1")  # idempotent: rewrites it
            ours = min(ours, time.perf_counter() - t0)
            t0 = time.perf_counter()
            spark.read.parquet(f"{raw}/day={last_day}").write.format("delta").mode("append").save(
                f"{folder}/baseline_{i}"
            )
            base = min(base, time.perf_counter() - t0)
        stored = group.read(version="v1").count()
        ratio = ours / base
        print(f"events: {args.events:,} over {args.days} days; the day written: {day_rows:,}")
        print(f"ours     (group.write of one day)        : {ours:7.2f} s")
        print(f"baseline (read the day, append to Delta)  : {base:7.2f} s")
        print(f"ours / baseline: {ratio:.2f}x (target <= 1.5x); events stored: {stored:,}")
        print(
            json.dumps(
                {
                    "events": args.events,
                    "days": args.days,
                    "day_events": day_rows,
                    "ours_s": round(ours, 3),
                    "baseline_s": round(base, 3),
                    "ratio": round(ratio, 3),
                    "target_met": ratio <= 1.5,
                }
            )
        )
    finally:
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
