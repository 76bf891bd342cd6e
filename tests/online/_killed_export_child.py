"""Child process of test_online_atomic: starts exports that stall mid-write, to be killed.

Usage: python _killed_export_child.py REDIS_URL KEY_PREFIX EMBEDDED_DIR MARKER_DIR TABLE

For each sink, an export of 4 partitions begins; every task writes its first batch, then
touches ``MARKER_DIR/<sink>-<pid>`` and sleeps, so the generation is half written when
the test kills this process group with SIGKILL.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyspark.sql import SparkSession

from seeknal_spark.online import (
    EmbeddedSink,
    OnlineSink,
    RedisSink,
    SinkWriter,
    Snapshot,
    export_snapshots,
)


class StallingSink(OnlineSink):
    """Delegates to a real sink; its writers stall forever after their first batch."""

    def __init__(self, inner: OnlineSink, label: str, markers: str) -> None:
        self.inner = inner
        self.label = label
        self.markers = markers
        self.orphan_after = inner.orphan_after

    def describe(self) -> str:
        return self.inner.describe()

    def begin(self, table: str, namespaces: int) -> str:
        return self.inner.begin(table, namespaces)

    def heartbeat(self, table: str, generation: str) -> None:
        self.inner.heartbeat(table, generation)

    def open_writer(self, table: str, generation: str) -> SinkWriter:
        return StallingWriter(self.inner.open_writer(table, generation), self)

    def commit(self, table: str, generation: str, metadata: dict[str, Any]) -> str | None:
        return self.inner.commit(table, generation, metadata)

    def abort(self, table: str, generation: str) -> None:
        self.inner.abort(table, generation)

    def cleanup(self, table: str) -> list[str]:
        return self.inner.cleanup(table)

    def read(self, table: str, requests: Sequence[tuple[int, Sequence[str]]]) -> Any:
        return self.inner.read(table, requests)

    def read_metadata(self, table: str, generation: str | None = None) -> Any:
        return self.inner.read_metadata(table, generation)

    def generations(self, table: str) -> list[str]:
        return self.inner.generations(table)


class StallingWriter(SinkWriter):
    def __init__(self, inner: SinkWriter, sink: StallingSink) -> None:
        self.inner = inner
        self.sink = sink

    def write(self, namespace: int, keys: Any, values: Any, expire_at_ms: Any = None) -> None:
        self.inner.write(namespace, keys, values, expire_at_ms)
        self.inner.close()  # make the half-written batch really land in the store
        Path(self.sink.markers, f"{self.sink.label}-{os.getpid()}").touch()
        time.sleep(3600)

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    redis_url, prefix, embedded_dir, markers, table = sys.argv[1:6]
    spark = (
        SparkSession.builder.master("local[4]")  # two exports x 2 tasks
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "50")
        .getOrCreate()
    )
    df = spark.range(0, 400, numPartitions=2).selectExpr(
        "concat('K', cast(id as string)) as k", "'B' as gen", "id * 10 + 2 as x"
    )
    sinks = [
        StallingSink(RedisSink(redis_url, key_prefix=prefix), "redis", markers),
        StallingSink(EmbeddedSink(embedded_dir), "embedded", markers),
    ]
    threads = [
        threading.Thread(
            target=export_snapshots,
            args=([Snapshot("g", "v1", ("k",), df)],),
            kwargs={"name": table, "sink": s, "progress": False},
        )
        for s in sinks
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
