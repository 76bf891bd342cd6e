"""Benchmark of the window aggregation against a range join, window functions and a lower bound.

Usage::

    python benchmarks/window_agg.py --spine-rows 1000000 --events 10000000 --keys 100000 \\
        --skew zipf --verify

Generates a spine (``row_id``, ``entity_id``, ``prediction_time``) and events (``entity_id``,
``event_time``, ``amount`` double with 2% nulls, ``merchant`` long), uniform or Zipf keys,
as Parquet in a temporary folder ("events already written"). Then, in one Spark (local[2]),
each contender reads those files and writes Parquet: count/sum/avg/max(amount) and the
distinct count of ``merchant`` over 1d/7d/30d (15 features).

- ``ours``: :func:`seeknal_spark.offline.windows.window_aggregates`;
- ``range_join``: the spine left-joined to the events on the key and ``spine time - 30d <
  event time <= spine time``, grouped by spine row; distinct: ``count(DISTINCT)`` (exact);
- ``window_fn``: window functions over the union of spine and events, a ``rangeBetween``
  frame per window (by key, ordered by time in microseconds), kept to the spine rows.
  ``count(DISTINCT)`` is refused over a window; ``approx_count_distinct`` is allowed but
  approximate, ours is exact: distinct is ``size(collect_set)`` (exact);
- ``lower_bound``: read both inputs, shuffle each by key (events into a noop sink), write
  a spine-sized output (spine columns and 15 feature columns filled from the row id).

Baselines run after ours in a thread under a job group, cancelled past ``--cutoff`` x ours
(shown ``>= cutoff``). An untimed warm-up (a count of each input, a tiny run of ours that
starts the Python workers) comes first. Prints wall and CPU seconds (/proc: the JVM and
Python workers; steadier than wall time on a shared machine), the ratios, the issue's
targets and a one-line JSON. ``--verify`` compares every value of ours (and of window_fn)
with the range join's (an oracle in Spark SQL, run uncut if it was cut off) by anti-joins
both ways on row id, key, time and every feature (sums, means: 1e-9 relative; the rest
exact); a mismatch exits non-zero. Compare ratios from one run; repeat runs: timings on a
shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

# the same data generator and CPU meter as the as-of join's benchmark (run as a script, this
# folder is on sys.path)
from pit_join import _key_expr, _tree_cpu_seconds

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from seeknal_spark.definitions.aggregation import Aggregation

SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "4g",
    "spark.sql.adaptive.enabled": "true",
}
DAY_US = 86_400_000_000
START_US = 1_704_067_200_000_000  # 2024-01-01 UTC
WINDOWS = ("1d", "7d", "30d")
REL_TOL = 1e-9
SPINE_COLS = ("row_id", "entity_id", "prediction_time")
LABELS = {  # baseline: the ratio shown beside it
    "lower_bound": "ours / lower bound",
    "range_join": "range join / ours",
    "window_fn": "window fn / ours",
}
Times = dict[str, "tuple[float, float] | None"]  # contender: (wall, CPU) seconds, None: cut off
Ratios = dict[str, dict[str, "float | bool"]]
Feature = tuple[str, str, str, int]  # name, function, column, window in microseconds


def _spark(partitions: int) -> SparkSession:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("window-agg-bench")
    for key, value in {**SPARK_CONF, "spark.sql.shuffle.partitions": str(partitions)}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def generate(spark: SparkSession, args: argparse.Namespace, data: str) -> None:
    """Spine and events as Parquet; seeds 1,000 apart (Spark adds the partition index)."""
    from pyspark.sql import functions as F

    s = args.seed
    spine = spark.range(args.spine_rows, numPartitions=8).select(
        F.col("id").alias("row_id"),
        _key_expr(args.skew, args.keys, s + 1).alias("entity_id"),
        F.timestamp_micros(
            F.lit(START_US) + (F.rand(s + 1001) * args.days * DAY_US).cast("long")
        ).alias("prediction_time"),
    )
    spine.write.mode("overwrite").parquet(f"{data}/spine")
    lead = 30 * DAY_US  # events start one longest window before the spine
    events = spark.range(args.events, numPartitions=16).select(
        _key_expr(args.skew, args.keys, s + 10_000).alias("entity_id"),
        F.timestamp_micros(
            F.lit(START_US - lead) + (F.rand(s + 11_000) * (args.days * DAY_US + lead)).cast("long")
        ).alias("event_time"),
        F.when(F.rand(s + 12_000) >= 0.02, F.round(-F.log(F.rand(s + 13_000)) * 50.0, 2)).alias(
            "amount"
        ),
        F.floor(F.rand(s + 14_000) * 1_000).cast("long").alias("merchant"),
    )
    events.write.mode("overwrite").parquet(f"{data}/events")


def aggregations() -> list[Aggregation]:
    from seeknal_spark.definitions.aggregation import Aggregation

    funcs = ("count", "sum", "avg", "max")
    return [Aggregation("amount", f, list(WINDOWS)) for f in funcs] + [
        Aggregation("merchant", "approx_count_distinct", list(WINDOWS))
    ]


def _features(aggs: list[Aggregation]) -> list[Feature]:
    """Every feature, in output order."""
    return [
        (name, a.function, a.column, int(w.total_seconds()) * 1_000_000)
        for a in aggs
        for name, w in zip(a.names, a.windows, strict=True)
    ]


def _spark_agg(function: str, value: Column) -> Column:
    """Spark's aggregate for ``function``; ``collect_set`` for the distinct count."""
    from pyspark.sql import functions as F

    if function == "approx_count_distinct":
        return F.collect_set(value)
    return {"count": F.count, "sum": F.sum, "avg": F.avg, "max": F.max}[function](value)


def ours(spine: DataFrame, events: DataFrame, aggs: list[Aggregation]) -> DataFrame:
    from seeknal_spark.offline.windows import window_aggregates

    return window_aggregates(
        spine,
        events,
        keys="entity_id",
        spine_time_col="prediction_time",
        event_time_col="event_time",
        aggregations=aggs,
    )


def range_join(spine: DataFrame, events: DataFrame, aggs: list[Aggregation]) -> DataFrame:
    from pyspark.sql import functions as F

    feats = _features(aggs)
    longest = max(w for *_, w in feats)
    s = spine.withColumn("_tus", F.unix_micros("prediction_time")).alias("s")
    e = events.select(
        F.col("entity_id").alias("_k"),
        F.unix_micros("event_time").alias("_eus"),
        *dict.fromkeys(c for _, _, c, _ in feats),
    ).alias("e")
    cond = (F.col("s.entity_id") == F.col("e._k")) & (F.col("e._eus") <= F.col("s._tus"))
    cond &= F.col("e._eus") > F.col("s._tus") - F.lit(longest)
    columns = []
    for name, function, column, w in feats:
        value = F.when(F.col("e._eus") > F.col("s._tus") - F.lit(w), F.col(f"e.{column}"))
        if function == "approx_count_distinct":
            columns.append(F.count_distinct(value).alias(name))
        else:
            columns.append(_spark_agg(function, value).alias(name))
    joined = s.join(e, cond, "left")
    return joined.groupBy(*[F.col(f"s.{c}") for c in SPINE_COLS]).agg(*columns)


def window_fn(spine: DataFrame, events: DataFrame, aggs: list[Aggregation]) -> DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    feats = _features(aggs)
    values = list(dict.fromkeys(c for _, _, c, _ in feats))
    types = dict(events.dtypes)
    left = spine.select(
        *SPINE_COLS,
        F.unix_micros("prediction_time").alias("_tus"),
        *[F.lit(None).cast(types[c]).alias(c) for c in values],
    )
    right = events.select(
        F.lit(None).cast("long").alias("row_id"),
        "entity_id",
        F.lit(None).cast("timestamp").alias("prediction_time"),  # marks the events
        F.unix_micros("event_time").alias("_tus"),
        *values,
    )
    columns = []
    for name, function, column, w in feats:
        frame = Window.partitionBy("entity_id").orderBy("_tus").rangeBetween(-(w - 1), 0)
        over = _spark_agg(function, F.col(column)).over(frame)
        columns.append((F.size(over) if function == "approx_count_distinct" else over).alias(name))
    union = left.unionByName(right).select(*SPINE_COLS, *columns)
    return union.where(F.col("prediction_time").isNotNull())


def lower_bound(spine: DataFrame, events: DataFrame, aggs: list[Aggregation], out: str) -> None:
    from pyspark.sql import functions as F

    from seeknal_spark.definitions.aggregation import check_columns

    events.repartition("entity_id").write.format("noop").mode("overwrite").save()
    filler = [
        F.pmod(F.col("row_id"), F.lit(997 + i)).cast(f.dataType).alias(f.name)
        for i, f in enumerate(check_columns(aggs, events.schema))
    ]
    spine.repartition("entity_id").select("*", *filler).write.mode("overwrite").parquet(out)


def timed(
    spark: SparkSession, name: str, job: Callable[[], None], limit: float | None
) -> tuple[float, float] | None:
    """(wall, CPU) seconds of ``job`` run in a thread under job group ``name``; None when it
    ran past ``limit`` seconds and was cancelled."""
    from pyspark import InheritableThread

    failure: list[BaseException] = []

    def target() -> None:
        spark.sparkContext.setJobGroup(name, name, interruptOnCancel=True)
        try:
            job()
        except BaseException as exc:  # re-raised below unless the job was cancelled
            failure.append(exc)

    c0, t0 = _tree_cpu_seconds(os.getpid()), time.perf_counter()
    thread = InheritableThread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    wall, cpu = time.perf_counter() - t0, _tree_cpu_seconds(os.getpid()) - c0
    if thread.is_alive():
        spark.sparkContext.cancelJobGroup(name)
        thread.join(120)
        return None
    if failure:
        raise RuntimeError(f"{name} failed") from failure[0]
    return wall, cpu


def verify(spark: SparkSession, name: str, got: str, oracle: str, feats: list[Feature]) -> int:
    """Rows of ``got`` and of ``oracle`` without an equal row on the other side."""
    from pyspark.sql import functions as F

    a, b = spark.read.parquet(got).alias("a"), spark.read.parquet(oracle).alias("b")
    on = F.lit(True)
    for c in SPINE_COLS:
        on &= F.col(f"a.{c}") == F.col(f"b.{c}")
    for fname, function, *_ in feats:
        x, y = F.col(f"a.{fname}"), F.col(f"b.{fname}")
        if function in ("sum", "avg"):
            close = F.abs(x - y) <= F.lit(REL_TOL) * F.greatest(F.abs(x), F.abs(y))
            on &= (x.isNull() & y.isNull()) | close
        else:
            on &= x.eqNullSafe(y)
    only_got, only_oracle = a.join(b, on, "left_anti"), b.join(a, on, "left_anti")
    n_got, n_oracle, rows_got, rows_oracle = (
        only_got.count(),
        only_oracle.count(),
        a.count(),
        b.count(),
    )
    bad = n_got + n_oracle + abs(rows_got - rows_oracle)
    print(
        f" verify {name}: {rows_got:,} rows vs {rows_oracle:,} from the range join; "
        f"{n_got:,} without an equal oracle row, {n_oracle:,} oracle rows without an equal "
        "one: " + ("identical" if bad == 0 else f"{bad:,} MISMATCHES"),
        flush=True,
    )
    for who, df in ((name, only_got), ("oracle", only_oracle)):
        for row in df.orderBy("row_id").limit(3).collect():
            print(f"   {who}: {row.asDict()}")
    return bad


def _ratios(result: Times, cutoff: float) -> Ratios:
    """Wall and CPU ratios: ours / lower bound, baseline / ours (``cutoff`` when cut off)."""
    mine = result["ours"]
    if mine is None:  # unreachable: ours runs without a limit
        raise RuntimeError("ours was cut off")
    ratios: Ratios = {}
    for name in LABELS.keys() & result.keys():
        other = result[name]
        if other is None:
            ratios[name] = {"wall": cutoff, "cpu": cutoff, "cut_off": True}
            continue
        num, den = (mine, other) if name == "lower_bound" else (other, mine)
        ratios[name] = {"wall": num[0] / den[0], "cpu": num[1] / den[1], "cut_off": False}
    return ratios


def _fmt(x: float | bool, cut: bool) -> str:
    return f">= {x:.2f}" if cut else f"{x:.2f}"


def _report(result: Times, ratios: Ratios, limit: float | None, skew: str) -> dict[str, bool]:
    """Print the table of seconds and ratios and the issue's targets (on wall time)."""
    print(f"\n{'contender':<12} {'wall s':>9} {'CPU s':>9}  {'ratio':<19} {'wall':>8} {'CPU':>8}")
    for name, got in result.items():
        secs = f"{got[0]:9.1f} {got[1]:9.1f}" if got else f"{f'> {limit or 0:.1f}':>9} {'':>9}"
        r = ratios.get(name)
        if r:
            cut = bool(r["cut_off"])
            secs += f"  {LABELS[name]:<19} {_fmt(r['wall'], cut):>8} {_fmt(r['cpu'], cut):>8}"
        print(f"{name:<12} {secs}")
    targets: dict[str, bool] = {}
    if "lower_bound" in ratios:
        targets["ours <= 4 x lower bound"] = float(ratios["lower_bound"]["wall"]) <= 4.0
    if skew == "zipf" and "range_join" in ratios:
        wall = float(ratios["range_join"]["wall"])
        targets["ours >= 10 x faster than the range join"] = wall >= 10.0
    if skew == "uniform" and {"range_join", "window_fn"} <= ratios.keys():
        best = min(float(ratios[b]["wall"]) for b in ("range_join", "window_fn"))
        targets["ours no slower than the better of range join and window fn"] = best >= 1.0
    for text, ok in targets.items():
        print(f"target ({skew}, wall): {text}: {'met' if ok else 'NOT met'}")
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--spine-rows", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=100_000, help="distinct keys")
    parser.add_argument("--skew", choices=["uniform", "zipf"], default="uniform")
    parser.add_argument("--days", type=int, default=365, help="span of the spine times")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=16, help="spark.sql.shuffle.partitions")
    parser.add_argument("--cutoff", type=float, default=10.0, help="cut baselines at this x ours")
    parser.add_argument("--baselines", default=",".join(LABELS))
    parser.add_argument("--verify", action="store_true", help="check ours against the range join")
    args = parser.parse_args()
    baselines = [b for b in args.baselines.split(",") if b]
    if set(baselines) - LABELS.keys():
        parser.error(f"--baselines: choose among {list(LABELS)}, got {baselines}")
    if args.cutoff <= 1:
        parser.error("--cutoff must be > 1")

    data = tempfile.mkdtemp(prefix="window-agg-bench-")
    spark = _spark(args.partitions)
    try:
        t0 = time.perf_counter()
        generate(spark, args, data)
        print(
            f"data: spine {args.spine_rows:,} rows x {args.events:,} events, {args.keys:,} keys, "
            f"{args.skew}, {args.days} days ({time.perf_counter() - t0:.0f} s); windows "
            f"{'/'.join(WINDOWS)}; count/sum/avg/max(amount), distinct count(merchant)",
            flush=True,
        )
        spine = spark.read.parquet(f"{data}/spine")
        events = spark.read.parquet(f"{data}/events")
        aggs = aggregations()
        spine.count()  # warm-up, untimed: JVM, file listing, Python workers
        events.count()
        warm = ours(spine.limit(100), events.limit(1_000), aggs)
        warm.write.format("noop").mode("overwrite").save()

        def writer(build: Callable[..., DataFrame], name: str) -> Callable[[], None]:
            out = f"{data}/out_{name}"
            return lambda: build(spine, events, aggs).write.mode("overwrite").parquet(out)

        jobs: dict[str, Callable[[], None]] = {
            "ours": writer(ours, "ours"),
            "range_join": writer(range_join, "range_join"),
            "window_fn": writer(window_fn, "window_fn"),
            "lower_bound": lambda: lower_bound(spine, events, aggs, f"{data}/out_lower_bound"),
        }
        order = [b for b in ("lower_bound",) if b in baselines] + ["ours"]
        order += [b for b in ("range_join", "window_fn") if b in baselines]
        result: Times = {}
        limit: float | None = None
        for name in order:
            got = result[name] = timed(spark, name, jobs[name], limit)
            if got is None:
                shutil.rmtree(f"{data}/out_{name}", ignore_errors=True)
                print(f"{name:>12}: cut off after {limit or 0:.1f} s ({args.cutoff:g} x ours)")
            else:
                print(f"{name:>12}: {got[0]:.1f} s wall, {got[1]:.1f} s CPU", flush=True)
            if name == "ours" and got is not None:
                limit = args.cutoff * got[0]

        ratios = _ratios(result, args.cutoff)
        targets = _report(result, ratios, limit, args.skew)
        mismatches: dict[str, int] = {}
        if args.verify:
            oracle = f"{data}/out_range_join"
            if result.get("range_join") is None:
                print(" verify: running the range join uncut as the oracle", flush=True)
                range_join(spine, events, aggs).write.mode("overwrite").parquet(oracle)
            for name in ("ours", "window_fn"):
                if result.get(name) is not None:
                    out = f"{data}/out_{name}"
                    mismatches[name] = verify(spark, name, out, oracle, _features(aggs))
        summary = {
            **{k: getattr(args, k) for k in ("skew", "spine_rows", "events", "keys", "days")},
            "seconds": {k: (v[0] if v else None) for k, v in result.items()},
            "cpu_seconds": {k: (v[1] if v else None) for k, v in result.items()},
            "cutoff_seconds": limit,
            "ratios": ratios,
            "targets": targets,
            "mismatches": mismatches if args.verify else None,
        }
        print(json.dumps(summary, sort_keys=True), flush=True)
        if any(mismatches.values()):
            raise SystemExit(1)
    finally:
        spark.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
