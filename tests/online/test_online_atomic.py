"""Atomic generations: readers see one snapshot whole; killed exports change nothing served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.errors import OnlineStoreError
from seeknal_spark.online import EmbeddedSink, OnlineTable, RedisSink, Snapshot, export_snapshots
from tests.redis_server import start_redis, stop_redis

N = 400
CHILD = Path(__file__).with_name("_killed_export_child.py")


def _generation_df(spark: SparkSession, tag: str, offset: int) -> DataFrame:
    """Every feature of every key tells which export wrote it."""
    return spark.range(0, N, numPartitions=2).selectExpr(
        "concat('K', cast(id as string)) as k", f"'{tag}' as gen", f"id * 10 + {offset} as x"
    )


def _check_whole(rows: Any, keys: list[int]) -> str:
    tags = {r["gen"] for r in rows}
    assert len(tags) == 1, f"a read mixed generations: {tags}"
    tag = tags.pop()
    offset = {"A": 1, "B": 2, "C": 3}[tag]
    assert [r["x"] for r in rows] == [i * 10 + offset for i in keys]
    return str(tag)


def test_readers_see_whole_snapshots_during_flips(spark: SparkSession, sink: Any) -> None:
    snap = [Snapshot("g", "v1", ("k",), _generation_df(spark, "A", 1))]
    table = export_snapshots(snap, name="flips", sink=sink)
    keys = list(range(0, N, 7))
    request = [{"k": f"K{i}"} for i in keys]
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        reopened = OnlineTable.open("flips", sink=sink)
        while not stop.is_set():
            try:
                seen.append(_check_whole(reopened.get_features(keys=request), keys))
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
                return
            time.sleep(0.002)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        snap = [Snapshot("g", "v1", ("k",), _generation_df(spark, "B", 2))]
        export_snapshots(snap, name="flips", sink=sink)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors[0]
    assert set(seen) == {"A", "B"}, "the reader should see the flip"
    assert seen == sorted(seen), "a reader went back to an older snapshot"
    assert _check_whole(table.get_features(keys=request), keys) == "B"
    assert len(sink.generations("flips")) == 1


@pytest.mark.slow
@pytest.mark.parametrize("sink_kind", ["redis"])  # the child covers both sinks in one JVM
def test_killed_export_leaves_the_previous_snapshot(
    spark: SparkSession, redis_url: str, tmp_path: Path, sink_kind: str
) -> None:
    prefix = f"killed{os.getpid()}"
    sinks = {
        "redis": RedisSink(redis_url, key_prefix=prefix, orphan_after=1.0),
        "embedded": EmbeddedSink(tmp_path / "online", orphan_after=1.0),
    }
    keys = list(range(N))
    request = [{"k": f"K{i}"} for i in keys]
    served = {}
    for label, sink in sinks.items():
        snap = [Snapshot("g", "v1", ("k",), _generation_df(spark, "A", 1))]
        served[label] = export_snapshots(snap, name="killed", sink=sink)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            redis_url,
            prefix,
            str(tmp_path / "online"),
            str(markers),
            "killed",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and child.poll() is None:
            labels = {p.name.split("-")[0] for p in markers.iterdir()}
            if labels == {"redis", "embedded"}:
                break
            time.sleep(0.2)
        assert child.poll() is None, "the stalling export ended on its own"
        assert {p.name.split("-")[0] for p in markers.iterdir()} == {"redis", "embedded"}
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the child, its JVM and its Python workers
        child.wait()
    for label, sink in sinks.items():
        table = served[label]
        # the half-written generation exists, but readers still get the old one whole
        assert len(sink.generations("killed")) == 2, label
        assert _check_whole(table.get_features(keys=request), keys) == "A"
    time.sleep(1.5)  # the killed export's heartbeat is now older than orphan_after
    for label, sink in sinks.items():
        snap = [Snapshot("g", "v1", ("k",), _generation_df(spark, "C", 3))]
        table = export_snapshots(snap, name="killed", sink=sink)
        gen = table.metadata["generation"]
        assert sink.generations("killed") == [gen], label
        if isinstance(sink, RedisSink):  # no key of the killed export is left behind
            left = {k.decode() for k in sink.client().scan_iter(f"{prefix}:killed:[0-9]*")}
            assert left == {f"{prefix}:killed:{gen}:0", f"{prefix}:killed:{gen}:m"}
        assert _check_whole(table.get_features(keys=request), keys) == "C"


@pytest.mark.slow
@pytest.mark.parametrize("sink_kind", ["redis"])
def test_redis_killed_during_an_export(spark: SparkSession, tmp_path: Path, sink_kind: str) -> None:
    """A Redis server killed mid-export: a typed error naming the table and the server,
    and after a restart the previous snapshot is served whole."""
    proc, port = start_redis(str(tmp_path), persist=True)
    try:
        sink = RedisSink(f"redis://127.0.0.1:{port}/0", key_prefix="outage", orphan_after=1.0)
        keys = list(range(N))
        request = [{"k": f"K{i}"} for i in keys]
        first = [Snapshot("g", "v1", ("k",), _generation_df(spark, "A", 1))]
        table = export_snapshots(first, name="outage", sink=sink)

        def slow(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for frame in frames:  # a slow upstream, so the kill lands mid-write
                for start in range(0, len(frame), 500):
                    time.sleep(0.01)
                    yield frame.iloc[start : start + 500]

        big = (
            spark.range(0, 400_000, numPartitions=1)
            .selectExpr("concat('K', cast(id as string)) as k", "'B' as gen", "id * 10 + 2 as x")
            .mapInPandas(slow, "k string, gen string, x long")
        )
        failure: list[BaseException] = []

        def export() -> None:
            try:
                export_snapshots([Snapshot("g", "v1", ("k",), big)], name="outage", sink=sink)
            except BaseException as exc:  # checked by the main thread
                failure.append(exc)

        thread = threading.Thread(target=export, daemon=True)
        thread.start()
        client = sink.client()
        deadline = time.monotonic() + 120
        writing = False
        while time.monotonic() < deadline and not writing and thread.is_alive():
            gens = sink.generations("outage")
            writing = len(gens) == 2 and client.hlen(f"outage:outage:{gens[-1]}:0") > 0
            time.sleep(0.05)
        assert writing, "the second export never started writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        thread.join(timeout=180)
        assert not thread.is_alive(), "the export hung after Redis died"
        assert len(failure) == 1 and isinstance(failure[0], OnlineStoreError), failure
        message = str(failure[0])
        assert "'outage'" in message and f"127.0.0.1:{port}" in message, message
        assert "AttributeError" not in message and "Traceback" not in message, message

        proc, _ = start_redis(str(tmp_path), port=port, persist=True)
        assert _check_whole(table.get_features(keys=request), keys) == "A"
    finally:
        stop_redis(proc)
