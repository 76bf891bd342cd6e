"""Benchmark: the cost of writing one more day of events to an event group.

Usage::

    python benchmarks/window_write.py --events 10000000 --days 365 --keys 100000

Generates ``--events`` raw events over ``--days`` days (``entity_id``, ``event_time``,
``amount``, ``merchant``; uniform keys), stored as Parquet partitioned by day, the way raw
events usually land. An event group with the aggregations of ``window_agg.py``
(count/sum/avg/max of ``amount``, distinct ``merchant``, over 1d/7d/30d) is written up to
the last day in one untimed write. Then, in turn (``--repeat`` times, best of each):

- ``ours``: ``group.write(day, day + 1)``: the group's Delta write of the last day's events
  (the protocol's checks, its write id and commit included), the group's input being a
  function of the write's window that reads the window's day folders (the way a
  partitioned input is declared: see ``FeatureGroup``'s ``inputs``);
- ``ours, path input``: the same write with the input given as the folder's path, which
  Spark lists whole (one task per day folder) and filters on ``event_time``;
- ``ours, mode='append'``: the write of a day not yet stored with ``mode="append"`` (a
  scheduled job that knows its day is new; no window is replaced, so Delta need not
  rebuild the table's state);
- ``baseline``: reading that day's events alone (its partition folder) and appending them
  to a new Delta table: the least any store of that day can cost;
- ``delta replaceWhere``: reading that day alone and replacing it (``replaceWhere``) in a
  Delta table holding the history: the least an idempotent store of the day costs, since
  Delta then rebuilds the table's state to find the files the window covers.

Prints the times, the ratios (target: ours at most 1.5x the baseline) and a one-line JSON.
Also prints the events in the day against all events, to show the write does not grow with
the longest window (30d) or the history. The session is a local one as
:func:`seeknal_spark.session.get_spark` builds it. Compare ratios from one run: timings here
are noisy.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark import Aggregation, Entity, FeatureGroup, FeatureStore
from seeknal_spark.session import get_spark

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAY_S = 86_400


def _spark() -> SparkSession:
    spark = get_spark(
        "window-write-bench",
        master="local[2]",
        conf={
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.driver.memory": "4g",
        },
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _day_reader(raw: str) -> Callable[..., DataFrame]:
    """An input function reading the day folders of the write's window (``day=<n>``)."""

    def read_days(
        spark: SparkSession, window_start: datetime, window_end: datetime | None
    ) -> DataFrame:
        if window_end is None:
            return spark.read.parquet(raw).drop("day")
        first = int(window_start.timestamp()) // DAY_S
        last = (int(window_end.timestamp()) - 1) // DAY_S
        days = [f"{raw}/day={d}" for d in range(first, last + 1)]
        return spark.read.option("basePath", raw).parquet(*days).drop("day")

    return read_days


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

        def group(name: str, source: object) -> FeatureGroup:
            return FeatureGroup(
                name,
                Entity("customer", ["entity_id"]),
                "event_time",
                inputs={"txns": source},  # type: ignore[dict-item]
                aggregations=_aggregations(),
                store=store,
            )

        by_day = group("txn_windows", _day_reader(raw))
        by_path = group("txn_windows_path", raw)
        by_day.write(START, last, version="v1")  # the history, untimed
        by_path.write(START, last, version="v1")
        # the append contender adds one new day per repetition, the last one last
        appended = group("txn_windows_append", _day_reader(raw))
        first_new = last - timedelta(days=args.repeat - 1)
        appended.write(START, first_new, version="v1")
        history = f"{folder}/delta_history"
        spark.read.parquet(raw).where(F.col("day") < last_day).drop("day").write.format(
            "delta"
        ).save(history)
        day_rows = spark.read.parquet(f"{raw}/day={last_day}").count()
        window = f"event_time >= '{last.isoformat()}'"
        best = {
            "ours": float("inf"),
            "path": float("inf"),
            "base": float("inf"),
            "rw": float("inf"),
            "append": float("inf"),
        }

        def append_day(target: str) -> None:
            spark.read.parquet(f"{raw}/day={last_day}").write.format("delta").mode("append").save(
                target
            )

        def timed(label: str, action: Callable[[], object]) -> None:
            t0 = time.perf_counter()
            action()
            best[label] = min(best[label], time.perf_counter() - t0)

        for i in range(args.repeat):
            # each write is idempotent: the first adds the day, the next ones rewrite it
            timed("ours", lambda: by_day.write(last, last + timedelta(days=1), version="v1"))
            timed("path", lambda: by_path.write(last, last + timedelta(days=1), version="v1"))
            new_day = first_new + timedelta(days=i)
            timed(
                "append",
                functools.partial(
                    appended.write, new_day, new_day + timedelta(days=1), "v1", "append"
                ),
            )
            timed("base", functools.partial(append_day, f"{folder}/baseline_{i}"))
            timed(
                "rw",
                lambda: (
                    spark.read.parquet(f"{raw}/day={last_day}")
                    .write.format("delta")
                    .mode("overwrite")
                    .option("replaceWhere", window)
                    .save(history)
                ),
            )
        ours, base = best["ours"], best["base"]
        stored = by_day.read(version="v1").count()
        ratio = ours / base
        print(f"events: {args.events:,} over {args.days} days; the day written: {day_rows:,}")
        print(f"ours     (group.write of one day)                 : {ours:7.2f} s")
        print(f"ours     (the same, input given as the folder)    : {best['path']:7.2f} s")
        print(f"ours     (a new day, mode='append')               : {best['append']:7.2f} s")
        print(f"baseline (read the day, append to a new table)    : {base:7.2f} s")
        print(f"delta    (read the day, replaceWhere it in history): {best['rw']:7.2f} s")
        print(f"ours / baseline: {ratio:.2f}x (target <= 1.5x); events stored: {stored:,}")
        print(f"ours / delta replaceWhere: {ours / best['rw']:.2f}x")
        print(f"ours (mode='append') / baseline: {best['append'] / base:.2f}x")
        print(
            json.dumps(
                {
                    "events": args.events,
                    "days": args.days,
                    "day_events": day_rows,
                    "ours_s": round(ours, 3),
                    "path_input_s": round(best["path"], 3),
                    "append_s": round(best["append"], 3),
                    "append_ratio": round(best["append"] / base, 3),
                    "baseline_s": round(base, 3),
                    "delta_replace_where_s": round(best["rw"], 3),
                    "ratio": round(ratio, 3),
                    "ratio_to_replace_where": round(ours / best["rw"], 3),
                    "target_met": ratio <= 1.5,
                }
            )
        )
    finally:
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
