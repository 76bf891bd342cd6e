"""Benchmark of the point-in-time join against a naive plan and a lower bound.

Usage::

    python benchmarks/pit_join.py --spine-rows 1000000 --feature-rows 10000000 --groups 3 \\
        --skew zipf --timeout 600

Generates a spine and ``--groups`` feature tables of ``--feature-rows`` rows each (Parquet
under a temporary folder), then runs, each in its own fresh Spark (local[2]) so they do not
share caches:

- ``engine``: :func:`seeknal_spark.offline.pit.join.point_in_time_join`, output written as Parquet;
- ``naive``: per group, a key join with ``event_time <= spine_time`` followed by a
  ``row_number`` rank per spine row (the textbook plan that explodes on hot keys), cut off
  after ``--timeout`` seconds;
- ``bound``: read every input, shuffle each by key, write a spine-sized output: no join
  at all, a floor for any plan that must co-locate rows by key.

It prints each time and the ratios engine/bound and naive/engine. ``--repeat N`` runs
each method N times in its Spark (the best run counts, the first one pays the JVM and
Python-worker warm-up); ``--data DIR`` keeps the generated data for the next run;
``--verify`` then checks the engine's output, every row and value, against pandas
``merge_asof`` (an independent oracle, at full size). Timings on a shared machine are
noisy: compare ratios measured in one run, and run each configuration more than once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "16",
    "spark.driver.memory": "6g",
    "spark.sql.adaptive.enabled": "true",
}
DAY_US = 86_400_000_000
START_US = 1_704_067_200_000_000  # 2024-01-01 UTC


def _read_json(path: str) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds used by ``root`` and its descendants (the JVM, Python workers), from /proc.

    Less sensitive than wall time to other people's jobs on a shared machine.
    """
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def _spark(app: str) -> Any:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName(app)
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _key_expr(skew: str, keys: int, seed: int) -> Any:
    from pyspark.sql import functions as F

    if skew == "uniform":
        return F.floor(F.rand(seed) * keys).cast("long")
    # Zipf-like (exponent 1.2): P(key >= x) ~ x^-0.2, so key 0 holds ~13% of rows
    return F.pmod(F.floor(F.pow(F.rand(seed), -5.0)).cast("long") - 1, F.lit(keys))


def generate(args: argparse.Namespace, data: str) -> None:
    from pyspark.sql import functions as F

    spark = _spark("pit-bench-generate")
    days = 365
    # Spark seeds rand(seed) with seed + partition index: seeds 1,000 apart keep every
    # column and table independent of the others
    spine = spark.range(args.spine_rows, numPartitions=8).select(
        _key_expr(args.skew, args.keys, 1).alias("entity_id"),
        F.timestamp_micros(F.lit(START_US) + (F.rand(1001) * days * DAY_US).cast("long")).alias(
            "prediction_time"
        ),
        F.col("id").alias("row_id"),
        F.rand(2001).alias("label"),
    )
    spine.write.mode("overwrite").parquet(f"{data}/spine")
    for g in range(args.groups):
        feats = spark.range(args.feature_rows, numPartitions=16).select(
            _key_expr(args.skew, args.keys, 10_000 * (g + 1)).alias("entity_id"),
            F.timestamp_micros(
                F.lit(START_US - 30 * DAY_US)
                + (F.rand(10_000 * (g + 1) + 1000) * (days + 30) * DAY_US).cast("long")
            ).alias("event_time"),
            *[F.rand(10_000 * (g + 1) + 2000 + 1000 * j).alias(f"g{g}_f{j}") for j in range(3)],
        )
        feats.write.mode("overwrite").parquet(f"{data}/features_{g}")
    spark.stop()


def run(method: str, data: str, groups: int, out: str, repeat: int = 1) -> list[float]:
    """Run ``method`` ``repeat`` times, printing one JSON line of wall/CPU seconds per run."""

    spark = _spark(f"pit-bench-{method}")
    spine = spark.read.parquet(f"{data}/spine")
    feats = [spark.read.parquet(f"{data}/features_{g}") for g in range(groups)]
    spark.range(1).collect()  # JVM warm-up outside the timing
    times = []
    for _ in range(repeat):
        c0, t0 = _tree_cpu_seconds(os.getpid()), time.perf_counter()
        _run_once(method, spine, feats, out)
        times.append(time.perf_counter() - t0)
        cpu = _tree_cpu_seconds(os.getpid()) - c0
        print(json.dumps({"seconds": times[-1], "cpu": cpu}), flush=True)
    spark.stop()
    return times


def _run_once(method: str, spine: Any, feats: list[Any], out: str) -> None:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if method == "engine":
        from seeknal_spark.offline.pit.join import AsOfSource, point_in_time_join

        sources = [
            AsOfSource(f, ("entity_id",), "event_time", tuple(c for c in f.columns if "_f" in c))
            for f in feats
        ]
        point_in_time_join(spine, sources).write.mode("overwrite").parquet(out)
    elif method == "naive":
        result = spine
        for g, f in enumerate(feats):
            fcols = [c for c in f.columns if "_f" in c]
            r = f.select(F.col("entity_id").alias("_k"), F.col("event_time").alias("_et"), *fcols)
            joined = result.join(
                r,
                (result["entity_id"] == r["_k"]) & (r["_et"] <= result["prediction_time"]),
                "left",
            )
            w = Window.partitionBy("row_id").orderBy(F.col("_et").desc_nulls_last())
            result = (
                joined.withColumn(f"_rn{g}", F.row_number().over(w))
                .where(F.col(f"_rn{g}") == 1)
                .drop(f"_rn{g}", "_k", "_et")
            )
        result.write.mode("overwrite").parquet(out)
    elif method == "bound":
        for f in feats:
            f.repartition("entity_id").write.format("noop").mode("overwrite").save()
        spine.repartition("entity_id").write.mode("overwrite").parquet(out)
    else:
        raise ValueError(method)


def verify(data: str, groups: int) -> None:
    """The engine's output equals pandas ``merge_asof(by=entity_id, direction="backward")``.

    An independent oracle at full size: every spine row, every feature value, exactly.
    Ties on (key, event time) are resolved as the engine's rule says (greatest values).
    """
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    spine = pq.read_table(f"{data}/spine").to_pandas()
    got = pq.read_table(f"{data}/engine_out").to_pandas().sort_values("row_id")
    expected = spine.sort_values("prediction_time")
    for g in range(groups):
        feats = pq.read_table(f"{data}/features_{g}").to_pandas()
        values = [c for c in feats.columns if "_f" in c]
        feats = feats.sort_values(["event_time", *values]).drop_duplicates(
            ["entity_id", "event_time"], keep="last"
        )
        expected = pd.merge_asof(
            expected,
            feats,
            left_on="prediction_time",
            right_on="event_time",
            by="entity_id",
            direction="backward",
        ).drop(columns="event_time")
    expected = expected.sort_values("row_id")
    columns = [c for c in expected.columns if c in got.columns]
    same = len(got) == len(expected) and all(
        np.array_equal(
            got[c].to_numpy(), expected[c].to_numpy(), equal_nan=got[c].dtype.kind == "f"
        )
        for c in columns
    )
    print(
        f" verify: {len(got):,} engine rows vs {len(expected):,} from pandas merge_asof: "
        + ("identical" if same else "DIFFERENT"),
        flush=True,
    )
    if not same:
        raise SystemExit(1)


def _child(
    method: str, args: argparse.Namespace, data: str, timeout: float
) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of ``--repeat`` runs of ``method`` in a fresh Spark; [] when cut off."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--_run",
        method,
        "--_data",
        data,
        "--groups",
        str(args.groups),
        "--repeat",
        str(args.repeat),
    ]
    repeat = args.repeat
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
        env=env,
    )
    try:
        stdout, _ = proc.communicate(timeout=repeat * timeout + 60)  # + JVM start-up
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and the JVM it started
        stdout, _ = proc.communicate()
    runs = [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]
    if not runs and proc.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"{method} failed (exit code {proc.returncode}); run it alone")
    return [(r["seconds"], r["cpu"]) for r in runs if r["seconds"] <= timeout]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spine-rows", type=int, default=100_000)
    parser.add_argument("--feature-rows", type=int, default=1_000_000, help="rows per group")
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--skew", choices=["zipf", "uniform"], default="uniform")
    parser.add_argument("--keys", type=int, default=None, help="distinct keys (default M / 10)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each method in one Spark (best counts)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per method")
    parser.add_argument("--methods", default="bound,engine,naive")
    parser.add_argument(
        "--data",
        help="keep the generated data in this folder and reuse it when it matches the arguments",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="check the engine's output row by row against pandas merge_asof (needs memory)",
    )
    parser.add_argument("--_run", help=argparse.SUPPRESS)
    parser.add_argument("--_data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._run:
        out = tempfile.mkdtemp(prefix="pit-bench-out-")
        try:
            run(args._run, args._data, args.groups, out, args.repeat)
            if args._run == "engine":  # kept for --verify
                shutil.rmtree(f"{args._data}/engine_out", ignore_errors=True)
                shutil.move(out, f"{args._data}/engine_out")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return
    args.keys = args.keys or max(1_000, args.feature_rows // 10)
    data = args.data or tempfile.mkdtemp(prefix="pit-bench-data-")
    shape = {k: getattr(args, k) for k in ("spine_rows", "feature_rows", "groups", "skew", "keys")}
    shape["generator"] = 2  # independent seeds per column and table
    stamp = os.path.join(data, "_shape.json")
    try:
        t0 = time.perf_counter()
        if not (args.data and _read_json(stamp) == shape):
            generate(args, data)
            with open(stamp, "w") as fh:
                json.dump(shape, fh)
        print(
            f"data: spine {args.spine_rows:,} rows, {args.groups} x {args.feature_rows:,} "
            f"feature rows, {args.keys:,} keys, {args.skew} ({time.perf_counter() - t0:.0f} s)"
        )
        best: dict[str, tuple[float, float] | None] = {}
        for method in args.methods.split(","):
            runs = _child(method, args, data, args.timeout)
            best[method] = min(runs) if runs else None
            if runs:
                shown = ", ".join(f"{w:.1f}/{c:.1f}" for w, c in runs)
                print(
                    f"{method:>7}: {min(runs)[0]:.1f} s wall, {min(runs)[1]:.1f} s CPU "
                    f"(runs wall/CPU: {shown})",
                    flush=True,
                )
            else:
                print(f"{method:>7}: cut off at {args.timeout:.0f} s", flush=True)
        eng, bound, naive = best.get("engine"), best.get("bound"), best.get("naive")
        if eng and bound:
            print(f"engine / bound = {eng[0] / bound[0]:.2f} wall, {eng[1] / bound[1]:.2f} CPU")
        if eng and "naive" in best:
            if naive is None:
                print(f"naive / engine > {args.timeout / eng[0]:.1f} wall (naive cut off)")
            else:
                print(f"naive / engine = {naive[0] / eng[0]:.2f} wall, {naive[1] / eng[1]:.2f} CPU")
        if args.verify and eng:
            verify(data, args.groups)
    finally:
        if not args.data:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
