"""Benchmark of the online store on a local redis-server (not a test).

Side by side, in one run:

1. ``redis-benchmark -t set -P 100 -d <value size> -r <keys> -n <keys>``: what the server
   takes from a C client;
2. seeknal's export of ``<keys>`` entity keys (values of that size) from Spark
   (``local[2]``) into Redis, in keys per second (the whole ``export_snapshots`` call,
   best of ``--repeat`` runs);
3. ``OnlineTable.get_features`` latency (p50/p99) for 1 and 100 keys, against a raw
   redis-py ``HGET``/``HMGET`` of the same stored fields (the same bytes, no decoding);
4. the same 1-key call with three on-demand features computed from the looked-up row and
   a request field (scalar form; one depends on another), against the call without them:
   the p50/p99 they add.

Usage::

    python benchmarks/online.py [--keys 1000000] [--redis-url redis://127.0.0.1:6379/0]

Without ``--redis-url`` a private redis-server is started on a free port and stopped at
the end.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
from pyspark.sql import SparkSession

from seeknal_spark import OnDemandFeature
from seeknal_spark.online import OnlineTable, RedisSink, Snapshot, export_snapshots
from tests.redis_server import start_redis, stop_redis


def _redis_benchmark(host: str, port: int, keys: int, size: int) -> tuple[str, float]:
    cmd = [
        "redis-benchmark",
        "-h",
        host,
        "-p",
        str(port),
        "-t",
        "set",
        "-P",
        "100",
        "-d",
        str(size),
        "-r",
        str(keys),
        "-n",
        str(keys),
        "-q",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.findall(r"SET: ([0-9.]+) requests per second", out.replace("\r", "\n"))
    return " ".join(cmd), float(match[-1])


def _count_rows(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
    n = sum(b.num_rows for b in batches)
    yield pa.RecordBatch.from_arrays([pa.array([n], pa.int64())], names=["n"])


#: The on-demand case: two read stored features and a request field, one reads another.
ON_DEMAND = [
    OnDemandFeature("spend_per_visit", ["spend", "visits"], "double", lambda s, v: s / max(v, 1)),
    OnDemandFeature(
        "amount_vs_spend", ["amount", "spend"], "double", lambda a, s: a / max(s, 0.01)
    ),
    OnDemandFeature("unusual", ["amount_vs_spend"], "boolean", lambda r: r > 50.0),
]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49] * 1e6, q[98] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    proc = None
    folder = None
    url = args.redis_url
    if url is None:
        folder = tempfile.mkdtemp(prefix="seeknal-bench-redis-")
        proc, port = start_redis(folder)
        url = f"redis://127.0.0.1:{port}/0"
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        sink = RedisSink(url, key_prefix="bench")
        client = sink.client()
        df = (
            spark.range(0, args.keys, numPartitions=args.partitions)
            .selectExpr(
                "format_string('CUST%08d', id) as customer_id",
                "rand(1) as spend",
                "rand(2) as ratio",
                "cast(id * 7 % 1000000 as bigint) as visits",
            )
            .cache()
        )
        df.count()  # materialise: measure the export, not the data generator
        # what Spark alone costs: ship every row to Python through mapInArrow, do nothing
        floor = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            df.mapInArrow(_count_rows, "n long").collect()
            floor = min(floor, time.perf_counter() - t0)
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            table = export_snapshots(
                [Snapshot("customer", "v1", ("customer_id",), df)],
                name="bench",
                sink=sink,
                progress=False,
                on_demand=ON_DEMAND,
            )
            best = min(best, time.perf_counter() - t0)
        gen = table.metadata["generation"]
        hkey = f"bench:bench:{gen}:0"
        sample = [f'["CUST{i:08d}"]' for i in range(0, args.keys, 997)][:1000]
        size = round(statistics.mean(client.hstrlen(hkey, k) for k in sample))
        key_len = round(statistics.mean(len(k) for k in sample))
        export_rate = args.keys / best

        od_names = [f.name for f in ON_DEMAND]
        plain = OnlineTable.open("bench", sink=sink)  # the same snapshot, no functions
        names = [n for n in plain.feature_names if n not in od_names]
        one = [{"customer_id": "CUST00000042"}]
        request = [{"amount": 120.0}]
        hundred = [{"customer_id": f"CUST{i:08d}"} for i in range(1000, 1100)]
        raw_one = '["CUST00000042"]'
        raw_hundred = [f'["CUST{i:08d}"]' for i in range(1000, 1100)]
        if client.hget(hkey, raw_one) is None or not all(client.hmget(hkey, raw_hundred)):
            raise RuntimeError("benchmark keys missing from Redis")

        def timed(fn: Callable[[], object], n: int) -> list[float]:
            out = []
            for _ in range(n):
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
            return out

        od = table.get_features(one, [*names, *od_names], request=request)
        if od[0]["amount_vs_spend"] != 120.0 / max(od[0]["spend"], 0.01):
            raise RuntimeError("on-demand value differs from its definition")
        cases: dict[str, Callable[[], object]] = {
            "get_features 1 key": lambda: plain.get_features(one, names),
            "get_features 1 key + 3 on-demand": lambda: table.get_features(
                one, [*names, *od_names], request=request
            ),
            "raw HGET 1 key": lambda: client.hget(hkey, raw_one),
            "get_features 100 keys": lambda: plain.get_features(hundred, names),
            "raw HMGET 100 keys": lambda: client.hmget(hkey, raw_hundred),
        }
        lat: dict[str, list[float]] = {label: [] for label in cases}
        for fn in cases.values():
            timed(fn, 200)  # warm up
        # one call of each case in turn, so noise from other processes hits every case alike
        clock = time.perf_counter
        for _ in range(args.reads):
            for label, fn in cases.items():
                t = clock()
                fn()
                lat[label].append(clock() - t)

        client.flushdb()  # free memory before the C client runs
        bench_cmd, bench_rate = _redis_benchmark(host, port, args.keys, size)

        print(f"keys: {args.keys:,}; value size {size} B; key length {key_len} B")
        print(f"redis-benchmark : {bench_rate:12,.0f} SET/s   ({bench_cmd})")
        print(
            f"seeknal export  : {export_rate:12,.0f} keys/s  ({best:.2f} s, best of "
            f"{args.repeat}; {export_rate / bench_rate:.0%} of redis-benchmark)"
        )
        print(
            f"Spark floor     : {args.keys / floor:12,.0f} rows/s  ({floor:.2f} s: the same "
            "cached DataFrame through a no-op mapInArrow)"
        )
        for label in ("1 key", "100 keys"):
            ours = _percentiles(lat[f"get_features {label}"])
            raw_label = "raw HGET 1 key" if label == "1 key" else "raw HMGET 100 keys"
            raw = _percentiles(lat[raw_label])
            print(
                f"get_features {label:8s}: p50 {ours[0]:7.0f} us  p99 {ours[1]:7.0f} us | "
                f"{raw_label}: p50 {raw[0]:7.0f} us  p99 {raw[1]:7.0f} us | "
                f"p99 ratio {ours[1] / raw[1]:.2f}x"
            )
        base = _percentiles(lat["get_features 1 key"])
        with_od = _percentiles(lat["get_features 1 key + 3 on-demand"])
        print(
            f"on-demand       : 1 key + 3 on-demand features p50 {with_od[0]:7.0f} us  p99 "
            f"{with_od[1]:7.0f} us | without: p50 {base[0]:7.0f} us  p99 {base[1]:7.0f} us | "
            f"added p50 {with_od[0] - base[0]:+.0f} us, p99 {with_od[1] - base[1]:+.0f} us "
            "(target: at most +200 us at p99)"
        )
    finally:
        spark.stop()
        if proc is not None:
            stop_redis(proc)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
