"""The user flow on a real standalone cluster and through a real Spark Connect server.

Each lane runs ``tests/lanes/flow.py`` as a driver process of its own (a user's job or
notebook) and compares its figures with the same flow on the test session: the same rows
written and time-travelled, the same training set (content hash), the same served values,
and 0 mismatches between served values and the training join.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.lanes.servers import Servers

FLOW = Path(__file__).with_name("flow.py")
ROOT = Path(__file__).resolve().parents[2]


def _run_flow(args: list[str], folder: Path, redis_url: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("SPARK_REMOTE", None)
    result = subprocess.run(
        [sys.executable, str(FLOW), "--folder", str(folder), "--redis-url", redis_url, *args],
        capture_output=True, text=True, timeout=900, env=env, cwd=str(folder.parent),
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"flow exited {result.returncode}\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-6000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _assert_same(got: dict[str, Any], reference: dict[str, Any]) -> None:
    """Same figures as on the test session; the embedded sink refused (not local)."""
    assert got["value_mismatches"] == 0
    assert reference["value_mismatches"] == 0
    assert reference["embedded_sink"] == "served"
    assert got["embedded_sink"] == "refused"
    assert {**got, "embedded_sink": "served"} == reference


@pytest.mark.cluster
def test_flow_on_a_standalone_cluster(
    cluster: Servers, package_zip: Path, lane_folder: Path, redis_url: str,
    reference: dict[str, Any],
) -> None:
    got = _run_flow(
        ["--master", cluster.url, "--py-files", str(package_zip)],
        lane_folder / "cluster_run", redis_url.replace("/0", "/1"),
    )
    _assert_same(got, reference)


@pytest.mark.cluster
def test_executors_without_the_package_get_a_typed_error_first(
    cluster: Servers, lane_folder: Path, redis_url: str
) -> None:
    wrapper = lane_folder / "python_without_seeknal.sh"
    wrapper.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{FLOW.with_name("hide_package.py")}" "$@"\n'
    )
    wrapper.chmod(0o755)
    got = _run_flow(
        ["--master", cluster.url, "--executor-python", str(wrapper), "--preflight-only"],
        lane_folder / "preflight_run", redis_url,
    )
    assert got["error"] == "ConfigurationError"
    assert "cannot import seeknal_spark" in got["message"]
    assert "--py-files" in got["message"] and "addArtifacts" in got["message"]


@pytest.mark.connect
def test_flow_through_spark_connect(
    connect_server: Servers, lane_folder: Path, redis_url: str, reference: dict[str, Any]
) -> None:
    got = _run_flow(
        ["--remote", connect_server.url], lane_folder / "connect_run", redis_url.replace("/0", "/2")
    )
    _assert_same(got, reference)


@pytest.mark.connect
def test_cli_materialize_and_serve_through_spark_connect(
    connect_server: Servers, lane_folder: Path, redis_url: str
) -> None:
    from seeknal_spark import OnlineTable, RedisSink
    from tests.projects import example_project

    folder = lane_folder / "connect_cli"
    folder.mkdir()
    config = example_project(folder, n_customers=12, n_days=20)
    # the test server has no password
    config.write_text(config.read_text().replace("password_env: SEEKNAL_REDIS_PASSWORD", ""))
    url = redis_url.replace("/0", "/3")
    env = {**os.environ, "SEEKNAL_REDIS_URL": url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cli = [sys.executable, "-c", "from seeknal_spark.interfaces.cli import main; "
           "raise SystemExit(main())"]
    summaries = []
    for args in (
        ["materialize", "--start", "2024-01-01", "--end", "2024-01-21"],
        ["serve", "--sink", "redis", "--as-of", "2024-01-21", "--no-progress"],
    ):
        result = subprocess.run(
            [*cli, *args, "--config", str(config), "--remote", connect_server.url],
            capture_output=True, text=True, timeout=900, env=env, cwd=str(folder), check=False,
        )
        assert result.returncode == 0, f"{args[0]}: {result.stdout[-2000:]}{result.stderr[-4000:]}"
        summaries.append(json.loads(result.stdout.strip().splitlines()[-1]))
    table = OnlineTable.open("customer_features", sink=RedisSink(url=url))
    served = table.get_features(keys=[{"customer_id": "CUST00001"}])
    assert any(value is not None for value in served.rows[0].values()), served.rows
