"""jobs/materialize.py: through pyspark's own spark-submit, and its failure paths in process."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pyspark
import pytest
from pyspark.sql import SparkSession

from seeknal_spark.store.feature_store import FeatureStore
from tests.projects import example_project

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "jobs" / "materialize.py"
DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"


def tiny_project(folder: Path) -> Path:
    return example_project(folder, n_customers=20, n_days=15)


def package_zip(target: Path) -> Path:
    """seeknal_spark as a zip for spark-submit --py-files (sources only)."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted((ROOT / "seeknal_spark").rglob("*")):
            if path.suffix in (".py", ".typed") and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(ROOT))
    return target


def load_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("materialize_job", JOB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_spark_submit_with_py_files(spark: SparkSession, tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    archive = package_zip(tmp_path / "seeknal_spark.zip")
    spark_submit = Path(os.path.dirname(pyspark.__file__)) / "bin" / "spark-submit"
    command = [
        str(spark_submit),
        "--master",
        "local[1]",
        "--driver-memory",
        "1g",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.shuffle.partitions=2",
        "--conf",
        "spark.sql.session.timeZone=UTC",
        "--conf",
        "spark.databricks.delta.snapshotPartitions=1",
        "--packages",
        DELTA_PACKAGE,
        "--conf",
        "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "--conf",
        "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "--py-files",
        str(archive),
        str(JOB),
        "--config",
        str(project),
        "--feature-group",
        "customer_spend",
        "--start",
        "2024-01-08",
        "--end",
        "2024-01-10",
        "--interval",
        "1d",
    ]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "ok"
    assert summary["windows_written"] == 2 and summary["versions"] == {"customer_spend": "v1"}
    # structured logs: JSON lines (spark-submit merges the Python driver's stderr into its
    # stdout), and the package came from the --py-files zip
    lines = (done.stdout + done.stderr).splitlines()
    records = [json.loads(line) for line in lines if line.startswith('{"ts"')]
    assert any(r["logger"] == "seeknal_spark.store.feature_group" for r in records)
    assert any(
        f"{archive}/seeknal_spark" in r["message"]
        for r in records
        if r["logger"] == "seeknal_spark.interfaces.cli"
    ), records
    store = FeatureStore(str(tmp_path / "example_store"), spark=spark)
    assert store.read_table("customer_spend", "v1").count() == summary["rows"] > 0
    assert [h["window_start"][:10] for h in store.history("customer_spend", "v1")] == [
        "2024-01-09",
        "2024-01-08",
    ]


def _run_job(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = load_job().main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_job_fails_with_a_clear_message(spark: SparkSession, tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    code, _, err = _run_job("--config", str(tmp_path / "missing.yaml"), "--start", "2024-01-01")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("seeknal-spark: error: config file")
    code, _, err = _run_job("--config", str(project))
    assert code == 2 and "--start" in err.strip().splitlines()[-1]
    code, _, err = _run_job(
        "--config", str(project), "--start", "2024-01-01", "--feature-group", "nope"
    )
    assert code == 1
    assert "feature group 'nope' is not in" in err.strip().splitlines()[-1]
    # the logs before it are structured
    assert all(json.loads(line)["level"] for line in err.splitlines() if line.startswith("{"))


def _load(job: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{job}_job", ROOT / "jobs" / f"{job}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


JOBS = ["materialize", "build_training", "export_online", "parity", "drift"]
# no argument at all: every job but build_training (whose options all have defaults)
BAD_ARGUMENTS = [(job, ["--bogus"]) for job in JOBS] + [
    (job, []) for job in JOBS if job != "build_training"
]


@pytest.mark.parametrize(("job", "argv"), BAD_ARGUMENTS)
def test_every_job_answers_bad_arguments_with_one_line(
    job: str, argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """export_online used to print argparse's six-line usage block (issue 15, item 8)."""
    monkeypatch.chdir(tmp_path)  # no default conf/example.yaml here
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = _load(job).main(argv)
    message = err.getvalue()
    assert code == 2, (job, message)
    assert message.count("\n") == 1 and message.startswith("seeknal-spark: error: "), message
    assert out.getvalue() == ""
