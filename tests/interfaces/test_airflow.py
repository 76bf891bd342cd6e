"""The Airflow DAG, for real: the example DAG loads in Airflow and one run writes the store.

``scripts/airflow_env.sh`` creates (or reuses) ``.venv-airflow`` with Apache Airflow, its
Apache Spark provider, pyspark + Delta and this package. The test points a temporary
``AIRFLOW_HOME`` (SQLite metadata DB) at a DAGs folder holding a copy of
``examples/airflow/seeknal_example_dag.py``, creates ``spark_default`` for ``local[2]``,
checks the DAG imports with no error, runs ``airflow dags test seeknal_example 2024-01-02``
(each task a real ``spark-submit``), then reads the Delta tables and the online store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyspark.sql import SparkSession

import seeknal_spark.interfaces.airflow as seeknal_airflow
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.store.feature_store import FeatureStore

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "seeknal_example"
# `airflow dags test <dag> 2024-01-02` runs the data interval that ends at the logical date.
WINDOW = ("2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00")
GROUPS = ("customer_spend", "customer_profile")
SPARK_DEFAULTS = """\
spark.sql.shuffle.partitions 2
spark.default.parallelism 2
spark.ui.enabled false
spark.ui.showConsoleProgress false
spark.driver.memory 1g
spark.databricks.delta.snapshotPartitions 1
"""
SPARK_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
"""


def test_build_dag_without_airflow_names_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "airflow", None)  # importing it now raises ImportError
    with pytest.raises(ConfigurationError, match="pip install apache-airflow apache-airflow-"):
        seeknal_airflow.build_dag(tmp_path / "missing.yaml")


def test_find_jobs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEEKNAL_JOBS_DIR", raising=False)
    with pytest.raises(ConfigurationError, match="jobs_dir="):
        seeknal_airflow.find_jobs_dir(tmp_path)
    (tmp_path / "materialize.py").write_text("", encoding="utf-8")
    assert seeknal_airflow.find_jobs_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("SEEKNAL_JOBS_DIR", str(tmp_path))
    assert seeknal_airflow.find_jobs_dir() == tmp_path.resolve()


# -- the real run ----------------------------------------------------------------------------
def _run(cmd: list[str], *, env: dict[str, str], timeout: float, log: Path | None = None) -> str:
    began = time.monotonic()
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    if log is not None:
        log.write_text(output, encoding="utf-8")
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode} after "
            f"{time.monotonic() - began:.0f}s\n{output[-8000:]}"
        )
    return result.stdout


def _last_json(text: str) -> Any:
    """The last line of ``text`` that parses as JSON (Airflow prints warnings before it)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith(("[", "{")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise AssertionError(f"no JSON line in:\n{text[-3000:]}")


@pytest.fixture(scope="module")
def airflow_venv() -> Path:
    """``.venv-airflow`` built (the first time: a few minutes) or reused by the script."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "airflow_env.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/airflow_env.sh failed:\n{result.stderr[-6000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _project_config(folder: Path) -> Path:
    """conf/example.yaml, tiny, with every path absolute (tasks run in any folder)."""
    raw = yaml.safe_load((REPO / "conf" / "example.yaml").read_text(encoding="utf-8"))
    raw["project"]["name"] = "airflow_check"
    raw.pop("spark", None)  # under spark-submit the session comes from the command line
    raw.pop("training", None)
    raw["inputs"].pop("churn_spine", None)
    for source in raw["inputs"].values():
        source["args"] = {"n_customers": 12, "n_days": 14, "start": "2023-12-20", "seed": 7}
    raw["store"] = {"path": str(folder / "store")}
    raw["online"] = {
        "sink": "embedded",
        "table": "customer_features",
        "embedded": {"path": str(folder / "online")},
    }
    assert set(raw["feature_groups"]) == set(GROUPS), sorted(raw["feature_groups"])
    config = folder / "airflow_project.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def airflow_run(airflow_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run the example DAG once with ``airflow dags test``; yields the project folder."""
    root = tmp_path_factory.mktemp("airflow")
    home, dags, project = root / "home", root / "dags", root / "project"
    for folder in (home, dags, project):
        folder.mkdir()
    shutil.copy(REPO / "examples" / "airflow" / "seeknal_example_dag.py", dags)
    config = _project_config(project)
    # Site settings of the local "cluster", as an admin sets them: few partitions, no UI,
    # warnings only (every spark-submit output line goes through Airflow's task log).
    spark_conf = root / "spark-conf"
    spark_conf.mkdir()
    (spark_conf / "spark-defaults.conf").write_text(SPARK_DEFAULTS, encoding="utf-8")
    (spark_conf / "log4j2.properties").write_text(SPARK_LOG4J, encoding="utf-8")
    venv_bin = airflow_venv / "bin"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "PYSPARK", "SPARK_HOME", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # spark-submit (a provider-allowed binary name, so found on PATH) and the driver's
        # Python both come from the venv's pyspark.
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        PYSPARK_PYTHON=str(venv_bin / "python"),
        SPARK_CONF_DIR=str(spark_conf),
        SEEKNAL_CONFIG=str(config),
        SEEKNAL_JOBS_DIR=str(REPO / "jobs"),
        TZ="UTC",
    )
    airflow = str(venv_bin / "airflow")
    _run([airflow, "db", "migrate"], env=env, timeout=300)
    _run(
        [
            airflow, "connections", "add", "spark_default",
            "--conn-type", "spark",
            "--conn-host", "local[2]",
            "--conn-extra", json.dumps({"deploy-mode": "client", "spark-binary": "spark-submit"}),
        ],
        env=env, timeout=120,
    )  # fmt: skip

    errors = _last_json(
        _run([airflow, "dags", "list-import-errors", "--local", "-o", "json"], env=env,
             timeout=300)
    )  # fmt: skip
    assert errors == [], errors
    _run([airflow, "dags", "test", DAG_ID, "2024-01-02"], env=env, timeout=900,
         log=root / "dags_test.log")  # fmt: skip
    output = (root / "dags_test.log").read_text(encoding="utf-8")
    finished = [line for line in output.splitlines() if "DagRun Finished" in line]
    assert finished, output[-6000:]
    assert "state=success," in finished[-1], output[-6000:]
    yield project


@pytest.mark.slow
def test_example_dag_tasks(airflow_venv: Path, tmp_path: Path) -> None:
    """The DAG's shape and the rendered spark-submit command of a materialize task."""
    config = _project_config(tmp_path)
    jobs = tmp_path / "jobs"  # stand-ins: only the DAG's shape is checked here
    jobs.mkdir()
    for job in ("materialize.py", "export_online.py", "parity.py"):
        (jobs / job).write_text("", encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import json, sys
        from seeknal_spark.interfaces.airflow import build_dag
        dag = build_dag({str(config)!r}, jobs_dir={str(jobs)!r}, with_parity=True,
                        py_files="/opt/seeknal_spark.whl")
        task = dag.get_task("materialize_customer_spend")
        print(json.dumps({{
            "dag_id": dag.dag_id,
            "upstream": {{t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}},
            "application": task.application,
            "args": task.application_args,
            "packages": task.packages,
            "py_files": task.py_files,
            "conf": task.conf,
            "timetable": type(dag.timetable).__name__,
            "export": dag.get_task("export_online").application_args,
        }}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path / "home")
    shown = _last_json(
        _run([str(airflow_venv / "bin" / "python"), "-c", script], env=env, timeout=300)
    )
    assert shown["dag_id"] == "seeknal_airflow_check"
    assert shown["upstream"] == {
        "materialize_customer_spend": [],
        "materialize_customer_profile": [],
        "export_online": ["materialize_customer_profile", "materialize_customer_spend"],
        "parity_check": ["export_online"],
    }
    assert shown["application"] == str(jobs.resolve() / "materialize.py")
    assert shown["args"][:4] == ["--config", str(config), "--feature-group", "customer_spend"]
    assert shown["args"][4:8] == [
        "--start", "{{ data_interval_start.isoformat() }}",
        "--end", "{{ data_interval_end.isoformat() }}",
    ]  # fmt: skip
    assert shown["packages"] == "io.delta:delta-spark_2.13:4.0.1"
    assert shown["py_files"] == "/opt/seeknal_spark.whl"
    assert shown["conf"]["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert shown["timetable"] == "CronDataIntervalTimetable"
    # the export task runs the project's serve (its lookups and online sink)
    assert shown["export"] == [
        "--config", str(config), "--as-of", "{{ data_interval_end.isoformat() }}",
    ]  # fmt: skip


@pytest.mark.slow
def test_dag_run_materializes_the_interval(airflow_run: Path, spark: SparkSession) -> None:
    store = FeatureStore(str(airflow_run / "store"), spark=spark)
    for group in GROUPS:
        rows = store.read_table(group, "v1")
        stamp = store.get_definition(group, "v1").event_time_col  # an event group's is ts
        days = {
            r["day"].isoformat()
            for r in rows.selectExpr(f"CAST({stamp} AS DATE) AS day").distinct().collect()
        }
        assert days == {"2024-01-01"}, (group, days)
        assert rows.count() > 0
        windows = [(h.get("window_start"), h.get("window_end")) for h in store.history(group, "v1")]
        assert WINDOW in windows, (group, windows)


@pytest.mark.slow
def test_dag_run_exported_the_online_snapshot(airflow_run: Path, spark: SparkSession) -> None:
    from seeknal_spark.online import EmbeddedSink, OnlineTable

    store = FeatureStore(str(airflow_run / "store"), spark=spark)
    key = store.read_table("customer_spend", "v1").select("customer_id").first()
    assert key is not None
    table = OnlineTable.open("customer_features", sink=EmbeddedSink(str(airflow_run / "online")))
    features = table.get_features(keys=[{"customer_id": key["customer_id"]}])
    assert features.found == [True]
    assert features["spend_30d"] is not None
    assert features["segment"] is not None
