"""Load benchmark of online serving while exports flip generations (not a test).

N client processes (``--clients``, default 1, 4, 16) call ``get_features`` in a tight
loop for 1 and 100 random keys while the main process re-exports the table from Spark
(``local[2]``) every ``--flip-every`` seconds (back to back when an export takes
longer). The table has two lookups (``f0..f4`` and ``f5..f9``: one row is read from two
Redis hashes or two SQLite row sets) and export ``g`` writes ``g * 10**9 + i`` into
every feature of key ``i``, so each client checks every row it reads: **torn** (one row
from two generations), **mixed** (one call from two generations), and **bad**: wrong
key, missing key, a generation older than one seen before, or values of another export
than the generation the result names.

Per case: calls/s and keys/s (summed over the clients, the check included), p50/p99/p999
latency, errors (the first message is kept), those counts, generations seen and flips
(exports that ended in the window). The limit beside it, with the same N and the exports
still running: raw redis-py (one pipelined round trip of ``HMGET`` of the same fields of
both hashes: the same bytes, no decoding) or, for the embedded sink (SQLite, N = 1 and
4), a raw ``sqlite3`` read transaction of the same rows.

Usage::

    python benchmarks/online_load.py [--keys 100000] [--seconds 10] [--clients 1,4,16]
        [--sinks redis,embedded] [--redis-url redis://127.0.0.1:6379/0] [--quick]

Without ``--redis-url`` a private redis-server is started on a free port and stopped at
the end (with it, keys go under a private prefix deleted at the end). Prints a table and
a last line of JSON; exits 1 when a call failed or a read was not whole.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from seeknal_spark.online import (
    EmbeddedSink,
    OnlineFeatures,
    OnlineSink,
    OnlineTable,
    RedisSink,
    Snapshot,
    export_snapshots,
)

TABLE = "load_bench"
LOOKUPS = (("a", ("f0", "f1", "f2", "f3", "f4")), ("b", ("f5", "f6", "f7", "f8", "f9")))
NAMES = [f for _, feats in LOOKUPS for f in feats]
SCALE = 10**9  # value = g * SCALE + key index
POOL = 64  # requests prepared per client, cycled through
BAD = ("torn_rows", "mixed_calls", "wrong_rows", "missing_rows", "went_back")  # per client


@dataclass(frozen=True)
class Job:
    """One client's share of one measurement."""

    sink: str  # "redis" | "embedded"
    mode: str  # "ours" | "raw"
    location: str  # Redis URL or embedded folder
    prefix: str  # Redis key prefix
    keys: int  # entity keys in the table
    batch: int  # keys per call
    start_at: float  # time.time() of the start, the same for every client
    seconds: float
    seed: int = 0


@dataclass
class Tally:
    """What one client measured and saw."""

    calls: int = 0
    seconds: float = 0.0
    late: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    raw_misses: int = 0
    bad: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BAD, 0))
    pairs: set[tuple[str, int]] = field(default_factory=set)  # (generation, g) seen


class _Checker:
    """Checks that every row of a result is whole, of its key, of one generation."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self, res: OnlineFeatures, ids: list[int], t: Tally) -> None:
        gen, bad, width = int(res.generation), t.bad, len(NAMES)
        seen: set[int] = set()
        bad["went_back"] += gen < self.last
        self.last = max(self.last, gen)
        for i, row in zip(ids, res.to_list(), strict=True):
            if None in row:
                bad["missing_rows"] += 1
                continue
            g = row[0] // SCALE
            if row.count(g * SCALE + i) == width:  # the common case, at C speed
                seen.add(g)
                continue
            gs = {v // SCALE for v in row}
            bad["torn_rows" if len(gs) > 1 else "wrong_rows"] += 1
            seen |= gs
        bad["mixed_calls"] += len(seen) > 1
        t.pairs.update((res.generation, g) for g in seen)


class _RawRedis:
    """The limit: one pipelined round trip of ``HMGET`` of both hashes, no decoding."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.base = f"{prefix}:{TABLE}:"
        self.hashes = self._hashes()

    def _hashes(self) -> list[str]:
        gen = self.client.get(self.base + "current")
        if not isinstance(gen, bytes):
            raise RuntimeError(f"{self.base}current holds no generation")
        gen = gen.decode()
        return [f"{self.base}{gen}:{ns}" for ns in range(len(LOOKUPS))]

    def __call__(self, fields: list[str], t: Tally) -> Any:
        for _ in range(3):
            pipe = self.client.pipeline(transaction=False)
            for h in self.hashes:
                pipe.hmget(h, fields)
            out = pipe.execute()
            if all(v is not None for vals in out for v in vals):
                return out
            t.raw_misses += 1  # the generation was flipped and dropped: find the new one
            self.hashes = self._hashes()
        raise RuntimeError("raw HMGET found no values three times in a row")


class _RawSQLite:
    """The limit: one ``sqlite3`` read transaction of the pointer and the rows."""

    def __init__(self, folder: str) -> None:
        self.conn = sqlite3.connect(os.path.join(folder, f"{TABLE}.sqlite3"), isolation_level=None)

    def __call__(self, fields: list[str], t: Tally) -> Any:
        marks = ",".join("?" * len(fields))
        self.conn.execute("BEGIN")
        try:
            gen = self.conn.execute("SELECT generation FROM seeknal_pointer").fetchone()[0]
            return [
                self.conn.execute(
                    f"SELECT k, v FROM data_{int(gen)} WHERE ns = ? AND k IN ({marks})",
                    (ns, *fields),
                ).fetchall()
                for ns in range(len(LOOKUPS))
            ]
        finally:
            self.conn.execute("COMMIT")


Call = Callable[[Any, Tally], Any]


def _prepare(job: Job) -> tuple[list[tuple[list[int], Any]], Call, _Checker | None]:
    """The client's prepared requests, its call and its check (none for the raw limit)."""
    rng = random.Random(job.seed)
    ids = [[rng.randrange(job.keys) for _ in range(job.batch)] for _ in range(POOL)]
    if job.mode == "raw":
        fields = [[f'["K{i:08d}"]' for i in row] for row in ids]
        raw: Call = (
            _RawRedis(job.location, job.prefix) if job.sink == "redis" else _RawSQLite(job.location)
        )
        return list(zip(ids, fields, strict=True)), raw, None
    sink = (
        RedisSink(job.location, key_prefix=job.prefix)
        if job.sink == "redis"
        else EmbeddedSink(job.location)
    )
    table = OnlineTable.open(TABLE, sink=sink)
    requests = [[{"k": f"K{i:08d}"} for i in row] for row in ids]

    def ours(request: Any, t: Tally) -> Any:
        return table.get_features(request, NAMES)

    return list(zip(ids, requests, strict=True)), ours, _Checker()


def _client(job: Job) -> Tally:
    t = Tally()
    pool, call, check = _prepare(job)
    for _, request in pool[:8]:  # warm up: connections, scripts, plan cache
        call(request, Tally())
    delay = job.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    t.late = max(0.0, -delay)
    clock = time.perf_counter
    begin = clock()
    stop = begin + (job.start_at + job.seconds - time.time())
    lat = t.latencies
    k = 0
    while True:
        t0 = clock()
        if t0 >= stop:
            break
        ids, request = pool[k % POOL]
        k += 1
        try:
            res = call(request, t)
        except Exception as exc:  # counted and reported, never fatal
            t.errors += 1
            t.first_error = t.first_error or f"{type(exc).__name__}: {exc}"
            continue
        lat.append(clock() - t0)
        if check is not None:
            check(res, ids, t)
    t.calls = len(lat) + t.errors
    t.seconds = clock() - begin
    return t


def _worker(tasks: Any, results: Any) -> None:
    """A client process: runs jobs from its own queue until it gets ``None``."""
    while (job := tasks.get()) is not None:
        try:
            results.put(_client(job))
        except BaseException as exc:  # the whole client failed (e.g. could not open)
            results.put(Tally(errors=1, first_error=f"client failed: {exc!r}"))


class Exporter(threading.Thread):
    """Re-exports the table every ``every`` seconds; ``labels`` maps generation -> g."""

    def __init__(self, spark: Any, sink: OnlineSink, keys: int, every: float) -> None:
        super().__init__(name="exporter", daemon=True)
        self.spark, self.sink, self.keys, self.every = spark, sink, keys, every
        self.stop = threading.Event()
        self.labels: dict[str, int] = {}
        self.flips: list[float] = []  # time.time() at the end of each export
        self.durations: list[float] = []
        self.errors: list[str] = []
        self.g = 0

    def export(self) -> None:
        self.g += 1
        g, t0 = self.g, time.perf_counter()
        ids = self.spark.range(0, self.keys, numPartitions=2)
        cols = [[f"id + {g * SCALE} as {f}" for f in feats] for _, feats in LOOKUPS]
        snapshots = [
            Snapshot(group, "v1", ("k",), ids.selectExpr("format_string('K%08d', id) as k", *c))
            for (group, _), c in zip(LOOKUPS, cols, strict=True)
        ]
        table = export_snapshots(snapshots, name=TABLE, sink=self.sink, progress=False)
        self.labels[str(table.metadata["generation"])] = g
        self.durations.append(time.perf_counter() - t0)
        self.flips.append(time.time())

    def run(self) -> None:
        next_at = time.monotonic() + self.every
        while not self.stop.wait(max(0.0, next_at - time.monotonic())):
            next_at = time.monotonic() + self.every
            try:
                self.export()
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")


def _measure(
    queues: list[Any], results: Any, exporter: Exporter, job: Job, n: int
) -> dict[str, Any]:
    start_at = time.time() + 2.0 + 0.25 * n
    for c in range(n):
        queues[c].put(replace(job, start_at=start_at, seed=1000 * n + c))
    tallies: list[Tally] = [results.get(timeout=job.seconds + 600) for _ in range(n)]
    lat = np.concatenate([np.asarray(t.latencies, dtype=float) for t in tallies]) * 1e3
    p50, p99, p999 = np.percentile(lat, [50, 99, 99.9]) if lat.size else (np.nan,) * 3
    calls_s = sum(t.calls / t.seconds for t in tallies if t.seconds > 0)
    pairs: set[tuple[str, int]] = set().union(*(t.pairs for t in tallies))
    out: dict[str, Any] = {
        "sink": job.sink,
        "mode": job.mode,
        "clients": n,
        "keys_per_call": job.batch,
        "calls_s": round(calls_s, 1),
        "keys_s": round(calls_s * job.batch, 1),
        "p50_ms": round(float(p50), 3),
        "p99_ms": round(float(p99), 3),
        "p999_ms": round(float(p999), 3),
        "errors": sum(t.errors for t in tallies),
        **{k: sum(t.bad[k] for t in tallies) for k in BAD},
        "first_error": next((t.first_error for t in tallies if t.first_error), ""),
        "raw_misses": sum(t.raw_misses for t in tallies),
        "generations_seen": len({gen for gen, _ in pairs}),
        "flips": sum(start_at <= f <= start_at + job.seconds for f in exporter.flips),
        "late_s": round(max(t.late for t in tallies), 2),
        "_pairs": sorted(pairs),  # checked against the exporter's labels at the end
    }
    return out


def _print_table(rows: list[dict[str, Any]]) -> None:
    by = {(r["sink"], r["mode"], r["clients"], r["keys_per_call"]): r for r in rows}
    head = (
        f"{'sink':8} {'N':>3} {'keys':>4} | {'calls/s':>8} {'keys/s':>9} {'xN=1':>5} {'p50':>6} "
        f"{'p99':>6} {'p999':>6} | {'raw/s':>8} {'xN=1':>5} {'p50':>6} {'p99':>6} {'ours/raw':>8}"
        f" | {'err':>3} {'torn':>4} {'mixed':>5} {'bad':>3} {'gens':>4} {'flips':>5}"
    )
    print(head + "\n" + "-" * len(head))
    for (sink, mode, n, batch), r in by.items():
        if mode != "ours":
            continue
        b = by.get((sink, "raw", n, batch))
        one, raw_one = by.get((sink, "ours", 1, batch)), by.get((sink, "raw", 1, batch))
        scale = f"{r['calls_s'] / one['calls_s']:5.1f}" if one and one["calls_s"] else "    -"
        limit = f"{'-':>8} {'-':>5} {'-':>6} {'-':>6} {'-':>8}"
        if b and b["calls_s"]:
            up = f"{b['calls_s'] / raw_one['calls_s']:5.1f}" if raw_one else "    -"
            limit = (
                f"{b['calls_s']:8,.0f} {up} {b['p50_ms']:6.2f} {b['p99_ms']:6.2f} "
                f"{r['calls_s'] / b['calls_s']:8.0%}"
            )
        bad = r["wrong_rows"] + r["missing_rows"] + r["went_back"] + r["mislabelled"]
        print(
            f"{sink:8} {n:3d} {batch:4d} | {r['calls_s']:8,.0f} {r['keys_s']:9,.0f} {scale} "
            f"{r['p50_ms']:6.2f} {r['p99_ms']:6.2f} {r['p999_ms']:6.2f} | {limit} | "
            f"{r['errors']:3d} {r['torn_rows']:4d} {r['mixed_calls']:5d} {bad:3d} "
            f"{r['generations_seen']:4d} {r['flips']:5d}"
        )
    print(
        "ms latencies; calls/s, keys/s summed over N clients; xN=1: calls/s over N=1's; raw: "
        "redis-py pipelined HMGET / sqlite3 SELECT, same N; bad: wrong, missing, went back, "
        "mislabelled rows"
    )
    for r in rows:
        if r["first_error"]:
            print(f"first error ({r['sink']} {r['mode']} N={r['clients']}): {r['first_error']}")


def _run_sink(
    kind: str, args: argparse.Namespace, spark: Any, queues: list[Any], results: Any, url: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every measurement of one sink, with one exporter flipping generations throughout."""
    if kind == "redis":
        location, prefix = url, f"loadbench{os.getpid()}"
        sink: OnlineSink = RedisSink(url, key_prefix=prefix)
        counts = args.clients
    else:
        location, prefix = os.path.join(args.folder, "embedded"), ""
        sink = EmbeddedSink(location)
        counts = [n for n in args.clients if n <= 4]
    exporter = Exporter(spark, sink, args.keys, args.flip_every)
    exporter.export()  # the table exists before any client opens it
    exporter.start()
    base = Job(kind, "ours", location, prefix, args.keys, 1, 0.0, args.seconds)
    rows: list[dict[str, Any]] = []
    try:
        for n in counts:
            for batch in (1, 100):
                for mode in ("ours", "raw"):
                    job = replace(base, mode=mode, batch=min(batch, args.keys))
                    rows.append(r := _measure(queues, results, exporter, job, n))
                    say = (
                        f"{r['calls_s']:,.0f} calls/s, {r['errors']} errors, {r['torn_rows']} torn"
                    )
                    print(f"  {kind} {mode} N={n} keys={batch}: {say}", file=sys.stderr)
    finally:
        exporter.stop.set()
        exporter.join()
    for r in rows:  # every (generation, g) a client saw must be what was exported
        pairs = r.pop("_pairs")
        r["mislabelled"] = sum(exporter.labels.get(gen) != g for gen, g in pairs)
    info: dict[str, Any] = {
        "exports": len(exporter.durations),
        "export_s_mean": round(float(np.mean(exporter.durations)), 2),
        "export_s_max": round(max(exporter.durations), 2),
        "export_errors": exporter.errors,
    }
    if isinstance(sink, RedisSink):
        client = sink.client()
        left = list(client.scan_iter(f"{prefix}:*"))
        if left:
            client.delete(*left)
    else:
        wal = os.path.join(location, f"{TABLE}.sqlite3-wal")
        info["wal_mb"] = round(os.path.getsize(wal) / 2**20, 1) if os.path.exists(wal) else 0
    return rows, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=None, help="entity keys (100000)")
    parser.add_argument("--seconds", type=float, default=None, help="per measurement (10)")
    parser.add_argument("--clients", default=None, help="client process counts (1,4,16)")
    parser.add_argument("--sinks", default="redis,embedded")
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server")
    parser.add_argument("--flip-every", type=float, default=2.5, help="seconds between exports")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 keys, 2 s, N=1,4")
    args = parser.parse_args()
    args.keys = args.keys or (2000 if args.quick else 100_000)
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.clients = [
        int(c) for c in (args.clients or ("1,4" if args.quick else "1,4,16")).split(",")
    ]
    sinks = [s.strip() for s in args.sinks.split(",") if s.strip()]
    if set(sinks) - {"redis", "embedded"} or not sinks:
        parser.error(f"--sinks takes redis and/or embedded, not {args.sinks!r}")
    if not 0 < args.keys < SCALE or min(args.clients) < 1:
        parser.error(f"--keys must be in 1..{SCALE - 1} and --clients at least 1")

    from pyspark.sql import SparkSession

    from tests.redis_server import start_redis, stop_redis

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    queues = [ctx.Queue() for _ in range(max(args.clients))]
    procs = [ctx.Process(target=_worker, args=(q, results), daemon=True) for q in queues]
    args.folder = tempfile.mkdtemp(prefix="seeknal-load-")
    server = None
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    rows: list[dict[str, Any]] = []
    exports: dict[str, dict[str, Any]] = {}
    try:
        for p in procs:
            p.start()
        url = args.redis_url or ""
        if "redis" in sinks and not url:
            server, port = start_redis(args.folder)
            url = f"redis://127.0.0.1:{port}/0"
        for kind in sinks:
            sink_rows, exports[kind] = _run_sink(kind, args, spark, queues, results, url)
            rows += sink_rows
    finally:
        for q in queues:
            q.put(None)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()  # this client process only, by its PID
        spark.stop()
        if server is not None:
            stop_redis(server)
        shutil.rmtree(args.folder, ignore_errors=True)

    print(
        f"\nonline load: {args.keys:,} keys, 2 lookups x 5 bigint features, {args.seconds:g} s "
        f"per case, an export every {args.flip_every:g} s"
    )
    _print_table(rows)
    for kind, info in exports.items():
        print(f"exports ({kind}): {json.dumps(info)}")
    failed = [r for r in rows if any(r[k] for k in ("errors", *BAD, "mislabelled"))]
    export_errors = sum(len(i["export_errors"]) for i in exports.values())
    ok = not failed and not export_errors
    summary = {"ok": ok, "keys": args.keys, "seconds": args.seconds, "exports": exports}
    print(json.dumps({**summary, "flip_every": args.flip_every, "rows": rows}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
