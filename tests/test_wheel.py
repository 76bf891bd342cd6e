"""The cluster path: a built wheel of the package runs a job through ``spark-submit``.

The wheel is built with ``pip wheel``, installed (without dependencies) in a fresh virtual
environment that borrows pyspark/delta from this interpreter (``--system-site-packages``),
and shipped with ``--py-files``. The job runs from a temporary folder holding a copy of
``jobs/``, with the venv's Python as the driver and worker Python: the repository is not
on ``sys.path``, so ``seeknal_spark`` comes from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from seeknal_spark.store.feature_store import FeatureStore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def _run(
    cmd: list[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def _spark_submit() -> str:
    """spark-submit of the pyspark this interpreter imports (the tested Spark version)."""
    import pyspark

    found = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    if not found.is_file():
        pytest.fail(f"pyspark at {found.parent.parent} has no bin/spark-submit")
    return str(found)


def _write_config(folder: Path, store: Path) -> Path:
    config = folder / "wheel_project.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            project: {{name: wheel_check}}
            store: {{path: "{store}"}}
            inputs:
              transactions:
                generator: "seeknal_spark.example.data:transactions"
                args: {{n_customers: 8, n_days: 10, start: "2024-01-01", seed: 3}}
            entities:
              customer: {{join_keys: [customer_id]}}
            feature_groups:
              customer_spend:
                entity: customer
                event_time_col: event_time
                transform: "seeknal_spark.example.features:customer_spend"
                inputs: [transactions]
                features:
                  spend_7d: double
                  spend_30d: double
                  txn_count_30d: bigint
                  avg_amount_30d: double
                ttl: 30d
            """
        ),
        encoding="utf-8",
    )
    return config


def test_wheel_runs_materialize_through_spark_submit(tmp_path: Path, spark: SparkSession) -> None:
    # 1. Build the wheel from a copy of the checkout (setuptools writes build/ in the tree).
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "seeknal_spark",
        src / "seeknal_spark",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(src)],
        timeout=600,
    )
    wheels = sorted(dist.glob("seeknal_spark-*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for module in ("__init__.py", "py.typed", "cli.py", "online/__init__.py", "example/data.py"):
        assert f"seeknal_spark/{module}" in names, f"{module} missing from {wheel.name}"
    assert not any(n.startswith(("tests/", "jobs/")) for n in names)

    # 2. A fresh venv with the wheel installed (pyspark & co. from the system site).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], timeout=300)
    python = venv / "bin" / "python"
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        timeout=300,
    )

    # 3. A working folder outside the repository, with its own copy of the jobs.
    work = tmp_path / "work"
    shutil.copytree(REPO / "jobs", work / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    store = tmp_path / "store"
    config = _write_config(work, store)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "SPARK_HOME", "PYSPARK_DRIVER_PYTHON", "PYSPARK_PYTHON"}
    }
    env.update(PYSPARK_PYTHON=str(python), TZ="UTC", PYTHONPATH=str(wheel))

    # The driver imports seeknal_spark from the wheel, never from the checkout.
    probe = _run(
        [
            str(python),
            "-c",
            "import json, sys, seeknal_spark; "
            "print(json.dumps({'file': seeknal_spark.__file__, 'path': sys.path}))",
        ],
        timeout=120,
        cwd=work,
        env=env,
    )
    imported = json.loads(probe.stdout.strip().splitlines()[-1])
    assert imported["file"].startswith(str(wheel)), imported["file"]
    assert not any(p and Path(p).resolve() == REPO for p in imported["path"]), imported["path"]

    # 4. spark-submit --py-files <wheel> jobs/materialize.py ...
    conf_args = [arg for key, value in DELTA_CONF.items() for arg in ("--conf", f"{key}={value}")]
    cmd = [
        _spark_submit(),
        "--master", "local[2]",
        "--packages", DELTA_PACKAGE,
        *conf_args,
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.session.timeZone=UTC",
        "--py-files", str(wheel),
        "jobs/materialize.py",
        "--config", str(config),
        "--feature-group", "customer_spend",
        "--start", "2024-01-05",
        "--end", "2024-01-07",
    ]  # fmt: skip
    env.pop("PYTHONPATH")  # spark-submit puts the --py-files on the driver's path itself
    result = _run(cmd, timeout=600, cwd=work, env=env)
    summary = json.loads(result.stdout.strip().splitlines()[-1])  # the job's one-line JSON
    assert summary["feature_groups"]["customer_spend"]["rows"] > 0, summary

    # 5. The Delta table holds the window, and its history records it.
    fs = FeatureStore(str(store), spark=spark)
    rows = fs.read_table("customer_spend", "v1")
    days = sorted(
        r["day"] for r in rows.selectExpr("CAST(event_time AS DATE) AS day").distinct().collect()
    )
    assert [d.isoformat() for d in days] == ["2024-01-05", "2024-01-06"]
    assert rows.count() > 0
    windows = [
        (h.get("window_start"), h.get("window_end")) for h in fs.history("customer_spend", "v1")
    ]
    assert ("2024-01-05T00:00:00+00:00", "2024-01-07T00:00:00+00:00") in windows, windows
