"""Atomic generations: readers see one snapshot whole; killed exports change nothing served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.online import EmbeddedSink, OnlineTable, RedisSink, Snapshot, export_snapshots

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
