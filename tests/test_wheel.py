"""The cluster path, and the local extra: a built wheel runs a job through ``spark-submit``.

The wheel (built once per session, see ``tests/venvs.py``) is installed with its ``local``
extra into an empty virtual environment: pip brings pyspark, delta-spark and the rest, and
nothing comes from the interpreter running the tests (which may itself be a virtualenv).
That environment's ``spark-submit`` runs the job with the wheel shipped as ``--py-files``,
from a temporary folder holding a copy of ``jobs/``, with the venv's Python as the driver and
worker Python: the repository is not on ``sys.path``, so ``seeknal_spark`` comes from the
wheel.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from seeknal_spark.store.feature_store import FeatureStore
from tests.venvs import REPO, built_wheel, clean_env, distributions, new_venv, pip_install, run

pytestmark = pytest.mark.slow

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


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
                event_time_col: ts
                inputs: [transactions]
                aggregations:
                  - {{column: amount, function: sum, windows: [7d, 30d]}}
            """
        ),
        encoding="utf-8",
    )
    return config


@pytest.fixture()
def venv_python(tmp_path: Path) -> Iterator[Path]:
    """An empty virtualenv's Python; the environment (hundreds of MB) is removed afterwards."""
    yield new_venv(tmp_path / "venv")
    shutil.rmtree(tmp_path / "venv", ignore_errors=True)


def test_wheel_runs_materialize_through_spark_submit(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    venv_python: Path,
    spark: SparkSession,
) -> None:
    # 1. The wheel holds the package and nothing else.
    wheel = built_wheel(tmp_path_factory)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    package = REPO / "seeknal_spark"
    modules = [p for p in package.rglob("*") if p.suffix == ".py" or p.name == "py.typed"]
    expected = {p.relative_to(REPO).as_posix() for p in modules}
    assert len(expected) > 20 and not expected - names, sorted(expected - names)
    assert not any(n.startswith(("tests/", "jobs/")) for n in names)

    # 2. An empty venv gets the wheel with the local extra: the tested pyspark and Delta.
    python = venv_python
    venv = python.parent.parent
    pip_install(python, f"{wheel}[local]")
    installed = distributions(python)
    assert {d: installed.get(d) for d in ("pyspark", "delta-spark", "seeknal-spark")} == {
        "pyspark": "4.0.1",
        "delta-spark": "4.0.1",
        "seeknal-spark": "0.1.0",
    }, installed
    # spark-submit of the venv's pyspark: its Spark home is the pyspark package itself
    found = sorted(venv.glob("lib/python*/site-packages/pyspark/bin/spark-submit"))
    assert len(found) == 1, found
    spark_submit = found[0]
    # A local session gets Delta from the extra's delta-spark (its jars, same release).
    packages = run(
        [
            str(python),
            "-c",
            "from pyspark.sql import SparkSession\n"
            "from seeknal_spark.session import configure_builder\n"
            "print(configure_builder(SparkSession.builder)._options['spark.jars.packages'])",
        ],
        timeout=120,
        cwd=venv,
    )
    assert packages.stdout.strip().splitlines()[-1] == DELTA_PACKAGE, packages.stdout

    # 3. A working folder outside the repository, with its own copy of the jobs.
    work = tmp_path / "work"
    shutil.copytree(REPO / "jobs", work / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    store = tmp_path / "store"
    config = _write_config(work, store)
    env = clean_env(PYSPARK_PYTHON=str(python), TZ="UTC", PYTHONPATH=str(wheel))

    # The driver imports seeknal_spark from the wheel, never from the checkout.
    probe = run(
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
        str(spark_submit),
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
    result = run(cmd, timeout=600, cwd=work, env=env)
    summary = json.loads(result.stdout.strip().splitlines()[-1])  # the job's one-line JSON
    assert summary["feature_groups"]["customer_spend"]["rows"] > 0, summary

    # 5. The Delta table holds the window, and its history records it.
    fs = FeatureStore(str(store), spark=spark)
    rows = fs.read_table("customer_spend", "v1")
    days = sorted(r["day"] for r in rows.selectExpr("CAST(ts AS DATE) AS day").distinct().collect())
    assert [d.isoformat() for d in days] == ["2024-01-05", "2024-01-06"]
    assert rows.count() > 0
    windows = [
        (h.get("window_start"), h.get("window_end")) for h in fs.history("customer_spend", "v1")
    ]
    assert ("2024-01-05T00:00:00+00:00", "2024-01-07T00:00:00+00:00") in windows, windows
