"""The serving logger: threaded writes, rotation, atomic files, and reading back with Spark."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from seeknal_spark.errors import NotFoundError
from seeknal_spark.online.serving_log import ServingLogger, read_serving_log

T0 = datetime(2026, 11, 26, 23, 59, 50, tzinfo=timezone.utc)  # requests cross midnight UTC


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_threaded_round_trip_parquet(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "served"
    threads, calls = 4, 60
    expected = []

    def serve(t: int) -> None:
        for i in range(calls):
            keys = [{"customer_id": f"C{t}-{i}-{j}"} for j in range(2)]
            rows = [
                {"amount": t * 1000.0 + i + j / 10, "segment": f"s{j}", "visits": i}
                for j in range(2)
            ]
            logger.log(keys, rows, request_time=T0 + timedelta(seconds=i / 3))

    with ServingLogger(path, flush_every=50, flush_seconds=None) as logger:
        workers = [threading.Thread(target=serve, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    for t in range(threads):
        for i in range(calls):
            for j in range(2):
                expected.append((f"C{t}-{i}-{j}", t * 1000.0 + i + j / 10, f"s{j}", i))

    files = _files(path)
    assert not [f for f in files if f.name.startswith(".")]  # no temporary files left
    assert len(files) == logger.files_written > threads * calls * 2 // 50  # rotated per flush
    assert {f.parent.name for f in files} == {"request_date=2026-11-26", "request_date=2026-11-27"}
    assert logger.rows_written == len(expected) and logger.dropped_rows == 0

    df = read_serving_log(spark, path)
    assert df.columns[:2] == ["request_time", "request_id"]
    assert df.columns[-1] == "request_date"
    types = {f.name: f.dataType for f in df.schema.fields}
    assert types["request_time"] == T.TimestampType()
    assert types["amount"] == T.DoubleType() and types["visits"] == T.LongType()
    got = sorted(
        tuple(r) for r in df.select("customer_id", "amount", "segment", "visits").collect()
    )
    assert got == sorted(expected)
    per_request = df.groupBy("request_id").count().collect()
    assert len(per_request) == threads * calls and {r["count"] for r in per_request} == {2}
    after_midnight = read_serving_log(spark, path, start=datetime(2026, 11, 27))
    assert (
        after_midnight.count()
        == sum(1 for t in range(threads) for i in range(calls) if i / 3 >= 10) * 2
    )


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_jsonl_round_trip_and_missing_values(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "served_json"
    logger = ServingLogger(path, flush_every=2, flush_seconds=None, format="jsonl")
    logger.log([{"id": 1}, {"id": 2}], [{"amount": 1.5, "segment": "a"}, None], request_time=T0)
    logger.log([{"id": 3}], [{"amount": 2, "segment": None}])  # now, naive -> UTC default
    logger.close()
    logger.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        logger.log([{"id": 4}], [{"amount": 1.0}])
    assert all(f.suffix == ".jsonl" for f in _files(path))
    df = read_serving_log(spark, path)
    rows = {r["id"]: r for r in df.collect()}
    assert rows[1]["amount"] == 1.5 and rows[1]["segment"] == "a"
    assert rows[2]["amount"] is None and rows[2]["segment"] is None
    assert rows[3]["amount"] == 2.0
    micros = df.where("id = 1").select(F.unix_micros("request_time")).first()
    assert micros is not None and micros[0] == int(T0.timestamp()) * 1_000_000
    assert dict(df.dtypes)["request_time"] == "timestamp"


def test_types_kept_across_files_and_all_null_columns(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "typed"
    with ServingLogger(
        path, flush_every=1, flush_seconds=None, schema={"score": "double"}
    ) as logger:
        logger.log([{"k": "a"}], [{"score": 1, "note": None}], request_time=T0)  # int -> double
        logger.log([{"k": "b"}], [{"score": 2.5, "note": "x"}], request_time=T0)
        logger.log([{"k": "c"}], [{"score": None, "note": None}], request_time=T0)
    df = read_serving_log(spark, path)
    assert dict(df.dtypes)["score"] == "double" and dict(df.dtypes)["note"] == "string"
    got = sorted((r["k"], r["score"], r["note"]) for r in df.collect())
    assert got == [("a", 1.0, None), ("b", 2.5, "x"), ("c", None, None)]


def test_time_based_flush(tmp_path: Path) -> None:
    path = tmp_path / "timed"
    with ServingLogger(path, flush_every=10_000, flush_seconds=0.05) as logger:
        logger.log([{"k": 1}], [{"v": 1.0}])
        for _ in range(200):  # the background thread writes without log() or flush()
            if _files(path):
                break
            time.sleep(0.05)
        assert len(_files(path)) == 1
    assert logger.rows_written == 1


def test_bad_calls(spark: SparkSession, tmp_path: Path) -> None:
    with ServingLogger(tmp_path / "bad", flush_seconds=None) as logger:
        with pytest.raises(ValueError, match="2 keys but 1 feature rows"):
            logger.log([{"k": 1}, {"k": 2}], [{"v": 1}])
        with pytest.raises(ValueError, match="'request_time' is reserved"):
            logger.log([{"k": 1}], [{"request_time": 1}])
    with pytest.raises(ValueError, match="flush_every"):
        ServingLogger(tmp_path / "bad2", flush_every=0)
    with pytest.raises(ValueError, match="format"):
        ServingLogger(tmp_path / "bad3", format="csv")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match=r"no \.parquet or \.jsonl"):
        read_serving_log(spark, tmp_path / "bad")
    with pytest.raises(NotFoundError, match="no serving log"):
        read_serving_log(spark, tmp_path / "nowhere")


def test_failed_write_in_log_is_dropped_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logger = ServingLogger(tmp_path / "drop", flush_every=1, flush_seconds=None, format="jsonl")
    logger.log([{"k": 1}], [{"v": object()}])  # not JSON-serialisable: logged, dropped
    assert logger.dropped_rows == 1 and logger.rows_written == 0
    assert "could not write 1 rows" in caplog.text
    logger.close()
    assert not _files(tmp_path / "drop")


def test_failed_write_loses_no_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A write that fails (full disk) is retried, then kept for the next flush: no row lost."""
    import os

    path = tmp_path / "flaky"
    real_replace = os.replace
    failures = {"left": 5}  # the 3 attempts of the first write, then 2 of the second

    def flaky_replace(src: object, dst: object) -> None:
        if str(src).startswith(str(path)) and failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", flaky_replace)
    logger = ServingLogger(path, flush_every=1, flush_seconds=None, format="jsonl")
    logger.log([{"k": 1}], [{"v": 1.0}], request_time=T0)  # fails 3 times: kept
    assert logger.metrics.rows_pending == 1 and logger.metrics.write_failures == 1
    assert logger.rows_written == 0 and logger.dropped_rows == 0
    assert "kept for the next flush" in caplog.text
    logger.log([{"k": 2}], [{"v": 2.0}], request_time=T0)  # fails twice, then lands
    metrics = logger.metrics
    assert (metrics.rows_written, metrics.rows_pending, metrics.rows_dropped) == (2, 0, 0)
    assert metrics.write_retries == 4 and metrics.write_failures == 1
    logger.close()
    lines = [line for f in _files(path) for line in f.read_text().splitlines()]
    assert sorted(json.loads(line)["k"] for line in lines) == [1, 2]


def test_flush_keeps_rows_when_the_write_still_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    path = tmp_path / "down"
    real_replace = os.replace
    broken = {"on": True}

    def replace(src: object, dst: object) -> None:
        if broken["on"] and str(src).startswith(str(path)):
            raise OSError(5, "I/O error")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    logger = ServingLogger(path, flush_every=100, flush_seconds=None, format="jsonl")
    logger.log([{"k": 1}, {"k": 2}], [{"v": 1.0}, {"v": 2.0}], request_time=T0)
    with pytest.raises(OSError, match="I/O error"):
        logger.flush()
    assert logger.metrics.rows_pending == 2
    with pytest.raises(OSError):
        logger.close()  # still down: the rows stay pending, close can be called again
    broken["on"] = False
    logger.close()
    assert logger.metrics.rows_written == 2 and logger.metrics.rows_pending == 0
