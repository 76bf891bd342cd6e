"""Any session time zone gives the same instants (issue 16).

Every time is compared as an instant (microseconds since the epoch, computed in Spark or
from aware datetimes). The zones: UTC, America/Los_Angeles (the data crosses both DST
changes of 2024) and Asia/Kolkata (a half-hour offset), as the shared session's zone
(``session_zone``) and, in the slow test, as the ``TZ`` the driver's JVM and Python start
under.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seeknal_spark import AsOfSource, PitTuning, point_in_time_join
from tests.flow_tz import run_flow, utc

REPO = Path(__file__).resolve().parents[1]
ZONE_CONF = "spark.sql.session.timeZone"


@pytest.mark.usefixtures("session_zone")
@pytest.mark.parametrize("plan", ["auto", "merge", "join"])
def test_issue_repro_same_instants_under_every_zone_and_plan(
    spark: SparkSession, plan: Any
) -> None:
    """Issue 16's repro: the merge plan's Arrow kernel crashed outside UTC."""
    spine = spark.createDataFrame([("S1", utc(2020, 8, 1, 0, 0, 10))], "k string, t long")
    feat = spark.createDataFrame(
        [("S1", utc(2020, 8, 1, 0, 0, 1), 1.0)], "k string, et long, v double"
    )
    spine = spine.withColumn("t", F.timestamp_micros("t"))
    feat = feat.withColumn("et", F.timestamp_micros("et")).withColumn("seen", F.col("et"))
    out = point_in_time_join(
        spine,
        [AsOfSource(feat, ("k",), "et", ("v", "seen"))],
        timestamp_col="t",
        tuning=PitTuning(plan=plan),
    )
    rows = out.select("k", F.unix_micros("t"), "v", F.unix_micros("seen")).collect()
    assert [tuple(r) for r in rows] == [
        ("S1", utc(2020, 8, 1, 0, 0, 10), 1.0, utc(2020, 8, 1, 0, 0, 1))
    ]


def _expected_training() -> list[dict[str, Any]]:
    def row(
        k: str,
        t: int,
        ts: tuple[float, int],
        ntz: tuple[float, int],
        d: tuple[float, int],
        label: int,
    ) -> dict[str, Any]:
        return {
            "k": k,
            "prediction_time": t,
            "ts_v": ts[0],
            "ts_seen": ts[1],
            "ntz_v": ntz[0],
            "ntz_seen": ntz[1],
            "d_v": d[0],
            "d_seen": d[1],
            "label": label,
        }

    return [
        row(
            "A",
            utc(2024, 3, 10, 10),
            (1.0, utc(2024, 3, 10, 9, 30)),
            (1.0, utc(2024, 3, 10, 2, 30)),
            (1.0, utc(2024, 3, 10)),
            0,
        ),
        row(
            "A",
            utc(2024, 11, 3, 9),
            (3.0, utc(2024, 11, 3, 8, 30)),
            (2.0, utc(2024, 11, 3, 1, 30)),
            (2.0, utc(2024, 11, 3)),
            1,
        ),
        row(
            "A",
            utc(2024, 11, 3, 9, 30),
            (4.0, utc(2024, 11, 3, 9, 30)),
            (2.0, utc(2024, 11, 3, 1, 30)),
            (2.0, utc(2024, 11, 3)),
            0,
        ),
        row(
            "B",
            utc(2024, 3, 10, 10),
            (10.0, utc(2024, 3, 10, 9, 59, 59)),
            (5.0, utc(2024, 3, 10, 3)),
            (7.0, utc(2024, 3, 9)),
            1,
        ),
    ]


EXPECTED_SERVED = [
    {
        "ts_v": 4.0,
        "ts_seen": utc(2024, 11, 3, 9, 30),
        "ntz_v": 2.0,
        "ntz_seen": utc(2024, 11, 3, 1, 30),
        "d_v": 2.0,
        "d_seen": utc(2024, 11, 3),
    },
    {
        "ts_v": 11.0,
        "ts_seen": utc(2024, 11, 3, 8, 59, 59),
        "ntz_v": 5.0,
        "ntz_seen": utc(2024, 3, 10, 3),
        "d_v": 7.0,
        "d_seen": utc(2024, 3, 9),
    },
]


def _check_flow(result: dict[str, Any]) -> None:
    assert result["training"] == _expected_training()
    assert result["served"] == EXPECTED_SERVED
    assert result["parity"]["ok"] and result["parity"]["keys_checked"] == 6, result["parity"]
    assert [f["feature"] for f in result["drift"]["features"]] == [
        "ts_seen",
        "ntz_seen",
        "d_seen",
        "ts_v",
        "ntz_v",
        "d_v",
    ]


_UTC_RUNS: dict[str, dict[str, Any]] = {}


def _utc_run(spark: SparkSession, root: Path) -> dict[str, Any]:
    """The flow under the UTC session zone, run once per test session."""
    if "flow" not in _UTC_RUNS:
        previous = spark.conf.get(ZONE_CONF) or "UTC"
        spark.conf.set(ZONE_CONF, "UTC")
        try:
            _UTC_RUNS["flow"] = run_flow(spark, root)
        finally:
            spark.conf.set(ZONE_CONF, previous)
    return _UTC_RUNS["flow"]


def test_dst_data_through_every_public_path_gives_the_utc_instants(
    spark: SparkSession, session_zone: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """write -> to_dataframe -> serve -> get_features -> check_values -> compute_drift."""
    if session_zone == "UTC":
        result = _utc_run(spark, tmp_path_factory.mktemp("zone_utc"))
    else:
        result = run_flow(spark, tmp_path_factory.mktemp("zone"))
        utc_result = _utc_run(spark, tmp_path_factory.mktemp("zone_utc"))
        assert result["session_zone"] == session_zone
        assert {k: v for k, v in result.items() if k != "session_zone"} == {
            k: v for k, v in utc_result.items() if k != "session_zone"
        }
    _check_flow(result)


def _flow_in_subprocess(zone: str, root: Path) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "TZ": zone, "PYTHONPATH": str(REPO)}
    root.mkdir(parents=True, exist_ok=True)
    err = root / "stderr.txt"
    with err.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.flow_tz", str(root / "work")],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    return proc, err


def _wait_for_jars(proc: subprocess.Popen[str], err: Path, timeout: float = 120.0) -> None:
    """Until Spark's package resolution (one shared Ivy cache) is done or the run ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if "artifacts copied" in err.read_text(errors="replace"):
            return
        time.sleep(0.5)


@pytest.mark.slow
def test_driver_started_outside_utc_gives_the_utc_results(tmp_path: Path) -> None:
    """JVM and Python started under TZ=America/Los_Angeles, no session zone pinned: the
    same results as a TZ=UTC start (the two runs overlap once their jars are resolved)."""
    runs = {}
    for zone in ("America/Los_Angeles", "UTC"):
        runs[zone] = _flow_in_subprocess(zone, tmp_path / zone.replace("/", "_"))
        _wait_for_jars(*runs[zone])
    results: dict[str, dict[str, Any]] = {}
    for zone, (proc, err) in runs.items():
        out, _ = proc.communicate(timeout=900)
        log = err.read_text(errors="replace")[-4000:]
        assert proc.returncode == 0, f"TZ={zone} run failed:\n{log}"
        results[zone] = json.loads(out.strip().splitlines()[-1])
    local, utc_run = results["America/Los_Angeles"], results["UTC"]
    assert local.pop("session_zone") == "America/Los_Angeles"  # the JVM's zone, not pinned
    assert utc_run.pop("session_zone") == "UTC"
    assert local == utc_run
    _check_flow(local)
