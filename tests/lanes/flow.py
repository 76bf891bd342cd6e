"""The user flow the cluster and Connect lanes run, through the public API only.

``run(spark, folder, redis_url)`` writes two feature groups (three write modes, time
travel), builds a training set with several lookups and one hot key, serves it to Redis,
reads it back with ``get_features`` and checks every served value against the training
join. It returns plain JSON-able figures, so a lane's answer can be compared with the
same flow on the test session (``local[2]``).

Run as a script, it is a driver process of its own::

    python tests/lanes/flow.py --folder F --redis-url U (--master URL --py-files ZIP | --remote URL)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark import (
    EmbeddedSink,
    Entity,
    FeatureGroup,
    FeatureLookup,
    FeatureStore,
    HistoricalFeatures,
    OnDemandFeature,
    OnlineStoreError,
    RedisSink,
    check_values,
)

START = datetime(2024, 1, 1)
CUSTOMER = Entity("customer", ["customer_id"])
HOT = "c00"


def _events() -> list[tuple[str, datetime, float, str]]:
    rng = random.Random(11)
    rows = []
    for i in range(30):
        customer = f"c{i:02d}"
        count = 300 if customer == HOT else rng.randint(2, 12)
        for _ in range(count):
            ts = START + timedelta(minutes=rng.randint(0, 20 * 24 * 60))
            rows.append((customer, ts, round(rng.uniform(1, 100), 2), rng.choice("abc")))
    return rows


def daily_spend(txns: DataFrame) -> DataFrame:
    """Per customer and day: spend, count and the largest amount."""
    return txns.groupBy("customer_id", F.to_date("ts").alias("day")).agg(
        F.sum("amount").alias("spend"),
        F.count("*").alias("txn_count"),
        F.max("amount").alias("max_amount"),
    )


def latest_channel(txns: DataFrame) -> DataFrame:
    """Per customer and event: the channel used (a string feature)."""
    return txns.select("customer_id", "ts", "channel")


def _digest(df: DataFrame, order: list[str]) -> dict[str, Any]:
    """Count and a content hash of a small DataFrame (sorted, rounded floats)."""
    rows = sorted(
        tuple(round(v, 6) if isinstance(v, float) else v for v in row)
        for row in df.select(*order).collect()
    )
    text = json.dumps([[str(v) for v in row] for row in rows])
    return {"rows": len(rows), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def run(spark: SparkSession, folder: str, redis_url: str) -> dict[str, Any]:
    """The whole flow; see the module docstring."""
    store = FeatureStore(f"{folder}/store", spark=spark)
    txns = spark.createDataFrame(
        _events(), "customer_id string, ts timestamp, amount double, channel string"
    )
    spend = FeatureGroup(
        "lane_spend", CUSTOMER, "day", transform=daily_spend, inputs={"txns": txns}, store=store
    )
    channel = FeatureGroup(
        "lane_channel", CUSTOMER, "ts", transform=latest_channel, inputs={"txns": txns},
        store=store,
    )
    mid, end = START + timedelta(days=10), START + timedelta(days=21)
    first = spend.write(START, mid, version="v1")  # overwrite of a window
    spend.write(mid, end, version="v1", mode="append")
    spend.write(mid, end, version="v1", mode="merge")  # the same rows again: no duplicates
    channel.write(START, end, version="v1")
    travelled = spend.read(version="v1", as_of_version=first.delta_version).count()

    spine_rows = [
        (f"c{i:02d}", START + timedelta(days=d, hours=7 * i % 24), i % 2, 1.5 * i + d)
        for i in range(30)
        for d in (3, 9, 15, 22)
    ]
    spine_rows += [(HOT, START + timedelta(hours=h), 1, 2.0 * h) for h in range(0, 480, 5)]
    spine = spark.createDataFrame(
        spine_rows, "customer_id string, prediction_time timestamp, label int, amount double"
    )
    # request-time features: a request field against a looked-up one, and a pandas form
    vs_spend = OnDemandFeature(
        "amount_vs_spend", ["amount", "spend"], "double",
        lambda amount, spend: amount / max(spend or 0.0, 1.0),
    )
    hour = OnDemandFeature(
        "request_hour", ["prediction_time"], "int",
        lambda t: t.dt.hour.astype("int64"), mode="pandas",
    )
    hist = HistoricalFeatures(
        lookups=[
            FeatureLookup(spend, features=["spend", "txn_count", "max_amount"], version="v1",
                          ttl=timedelta(days=7)),
            FeatureLookup(channel, features=["channel"], version="v1", prefix="last_"),
        ],
        feature_start_time=START,
        on_demand=[vs_spend, hour],
    )
    training = hist.to_dataframe(spine_df=spine)
    table = hist.serve(name="lane_features", sink=RedisSink(url=redis_url), as_of=end)
    served = table.get_features(
        keys=[{"customer_id": HOT}, {"customer_id": "nobody"}],
        feature_names=["spend", "txn_count", "last_channel", "amount_vs_spend", "request_hour"],
        request=[{"amount": 10.0, "prediction_time": end}] * 2,
    )
    report = check_values(table, hist, requests=spine)
    try:  # a local folder is refused when executors may be elsewhere
        hist.serve(name="lane_embedded", sink=EmbeddedSink(f"{folder}/online"), as_of=end)
        embedded = "served"
    except OnlineStoreError:
        embedded = "refused"
    return {
        "embedded_sink": embedded,
        "written_rows": spend.read(version="v1").count(),
        "time_travel_rows": travelled,
        "training": _digest(
            training,
            ["customer_id", "prediction_time", "label", "spend", "txn_count", "max_amount",
             "last_channel", "amount_vs_spend", "request_hour"],
        ),
        "served": [dict(row) for row in served],
        "value_mismatches": report.total_mismatches,
    }


def preflight(spark: SparkSession) -> dict[str, str]:
    """The typed error a job gets when the executors lack the package."""
    from seeknal_spark._executors import require_package_on_executors
    from seeknal_spark.errors import SeeknalError

    try:
        require_package_on_executors(spark)
    except SeeknalError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": "", "message": ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--master")
    parser.add_argument("--py-files")
    parser.add_argument("--remote")
    parser.add_argument(
        "--executor-python", help="the executors' Python (default: this interpreter)"
    )
    parser.add_argument(
        "--preflight-only", action="store_true", help="only check the executors' package"
    )
    args = parser.parse_args(argv)
    if args.remote:
        spark = SparkSession.builder.remote(args.remote).getOrCreate()
    else:
        from seeknal_spark.session import configure_builder

        # the driver's PYSPARK_PYTHON names the executors' Python (plain `python` drivers)
        os.environ["PYSPARK_PYTHON"] = args.executor_python or sys.executable
        builder = (
            SparkSession.builder.master(args.master)
            .appName("seeknal-lane")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.executor.memory", "768m")
        )
        if args.py_files:
            builder = builder.config("spark.submit.pyFiles", args.py_files)
        spark = configure_builder(builder).getOrCreate()
    try:
        if args.preflight_only:
            print(json.dumps(preflight(spark)))
            return 0
        print(json.dumps(run(spark, args.folder, args.redis_url), default=str))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
