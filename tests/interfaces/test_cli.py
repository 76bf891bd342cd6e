"""The seeknal-spark CLI in process on the session fixture: materialize, list, describe."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from seeknal_spark._progress import Progress
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.interfaces import cli
from seeknal_spark.store.feature_group import FeatureGroup
from seeknal_spark.store.feature_store import FeatureStore
from tests.projects import example_project

WINDOW = ["--start", "2024-01-10", "--end", "2024-01-12", "--interval", "1d"]


def small_project(folder: Path) -> Path:
    return example_project(folder, n_customers=30, n_days=20)


def run(*argv: str) -> tuple[int, str, str]:
    """``cli.main(argv)`` with stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def summary_of(stdout: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    assert lines, "no JSON summary printed"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@pytest.fixture(scope="module")
def project_file(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> Path:
    return small_project(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def materialized(project_file: Path) -> dict[str, Any]:
    code, out, err = run("materialize", "--config", str(project_file), *WINDOW)
    assert code == 0, err
    return summary_of(out)


@pytest.fixture()
def store(project_file: Path, spark: SparkSession) -> FeatureStore:
    return FeatureStore(str(project_file.parent / "example_store"), spark=spark)


def test_materialize_writes_each_window_with_metadata(
    materialized: dict[str, Any], store: FeatureStore
) -> None:
    assert materialized["status"] == "ok"
    assert materialized["windows"] == 4 and materialized["windows_written"] == 4
    assert materialized["versions"] == {"customer_spend": "v1", "customer_profile": "v1"}
    for name in ("customer_spend", "customer_profile"):
        group = materialized["feature_groups"][name]
        stored = store.read_table(name, "v1").count()
        assert stored == group["rows"] > 0
        history = store.history(name, "v1")
        assert [(h["window_start"], h["window_end"], h["mode"]) for h in history] == [
            ("2024-01-11T00:00:00+00:00", "2024-01-12T00:00:00+00:00", "overwrite"),
            ("2024-01-10T00:00:00+00:00", "2024-01-11T00:00:00+00:00", "overwrite"),
        ]
        definition = store.get_definition(name, "v1")
        assert {h["transform_hash"] for h in history} == {definition.transform_hash}
    assert materialized["rows"] == sum(g["rows"] for g in materialized["feature_groups"].values())


def test_rerun_is_skipped_and_force_rewrites(
    materialized: dict[str, Any], project_file: Path, store: FeatureStore
) -> None:
    counts = {n: store.read_table(n, "v1").count() for n in materialized["versions"]}
    versions = {n: store.current_table_version(n, "v1") for n in counts}

    code, out, err = run("materialize", "--config", str(project_file), *WINDOW)
    assert code == 0, err
    again = summary_of(out)
    assert (again["windows_skipped"], again["windows_written"], again["rows"]) == (4, 0, 0)
    assert {n: store.read_table(n, "v1").count() for n in counts} == counts
    assert {n: store.current_table_version(n, "v1") for n in counts} == versions

    code, out, err = run(
        "materialize",
        "--config",
        str(project_file),
        "-g",
        "customer_spend",
        "--start",
        "2024-01-10",
        "--end",
        "2024-01-11",
        "--force",
    )
    assert code == 0, err
    forced = summary_of(out)
    assert forced["windows_written"] == 1 and forced["rows"] > 0
    assert list(forced["versions"]) == ["customer_spend"]
    assert store.read_table("customer_spend", "v1").count() == counts["customer_spend"]
    assert store.current_table_version("customer_spend", "v1") == versions["customer_spend"] + 1
    newest = store.history("customer_spend", "v1")[0]
    assert newest["window_start"] == "2024-01-10T00:00:00+00:00"
    assert newest["window_end"] == "2024-01-11T00:00:00+00:00"


def test_delta_history_holds_the_commit_metadata(
    materialized: dict[str, Any], store: FeatureStore, spark: SparkSession
) -> None:
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, store.table_location("customer_profile", "v1"))
    raw = [r.userMetadata for r in table.history().select("userMetadata").collect()]
    records = [json.loads(m)["seeknal"] for m in raw if m]
    assert records and all(
        {"window_start", "window_end", "transform_hash", "version", "feature_group"} <= set(r)
        for r in records
    )


def test_list_describe_history(materialized: dict[str, Any], project_file: Path) -> None:
    config = ["--config", str(project_file)]
    code, out, _ = run("list", *config)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ENTITY", "VERSION", "STORED", "FEATURES", "DESCRIPTION"]
    assert lines[1].split()[:5] == ["customer_spend", "customer", "v1", "v1", "5"]
    assert lines[2].split()[:5] == ["customer_profile", "customer", "v1", "v1", "4"]
    code, out, _ = run("list", "--json", *config)
    assert [g["name"] for g in summary_of(out)["feature_groups"]] == [
        "customer_spend",
        "customer_profile",
    ]

    code, out, _ = run("describe", "customer_spend", *config)
    assert code == 0
    described = json.loads(out)
    assert described["materialized"] is True
    assert described["version"] == "v1" and described["join_keys"] == ["customer_id"]
    assert [f["name"] for f in described["features"]] == [
        "spend_7d",
        "spend_30d",
        "txn_count_30d",
        "avg_amount_30d",
        "last_txn_time",
    ]
    assert described["transform_hash"] == described["config"]["transform_hash"]
    assert described["config"]["inputs"] == ["transactions"]
    assert described["ttl_seconds"] is None  # an event group: its windows bound it

    code, out, _ = run("history", "customer_profile", "--version", "v1", *config)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "DELTA",
        "TIMESTAMP",
        "OPERATION",
        "MODE",
        "WINDOW_START",
        "WINDOW_END",
        "HASH",
    ]
    assert len(rows) == 2 and rows[0].split()[2:4] == ["WRITE", "overwrite"]
    code, out, _ = run("history", "customer_profile", "--json", *config)
    history = summary_of(out)["history"]
    assert [h["window_start"] for h in history] == [
        "2024-01-11T00:00:00+00:00",
        "2024-01-10T00:00:00+00:00",
    ]


def test_backfill_resumes_after_a_failure(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_file = small_project(tmp_path)
    real_write = FeatureGroup.write

    def failing_write(self: FeatureGroup, start: datetime, *args: Any, **kwargs: Any) -> Any:
        if start.day == 12:
            raise RuntimeError("executor lost\nlong JVM trace")
        return real_write(self, start, *args, **kwargs)

    monkeypatch.setattr(FeatureGroup, "write", failing_write)
    argv = [
        "materialize",
        "--config",
        str(project_file),
        "-g",
        "customer_profile",
        "--start",
        "2024-01-10",
        "--end",
        "2024-01-13",
        "--interval",
        "1d",
    ]
    code, out, err = run(*argv)
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "seeknal-spark: internal error: RuntimeError: executor lost "
        "(run with --debug for the traceback)"
    )
    failed = summary_of(out)
    assert failed["status"] == "error" and failed["windows_written"] == 2

    monkeypatch.setattr(FeatureGroup, "write", real_write)
    code, out, err = run(*argv)
    assert code == 0, err
    resumed = summary_of(out)
    assert (resumed["windows_skipped"], resumed["windows_written"]) == (2, 1)
    store = FeatureStore(str(tmp_path / "example_store"), spark=spark)
    starts = [h["window_start"][:10] for h in store.history("customer_profile", "v1")]
    assert starts == ["2024-01-12", "2024-01-11", "2024-01-10"]


def test_an_empty_rewrite_needs_allow_empty(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_file = small_project(tmp_path)
    argv = ["materialize", "--config", str(project_file), "-g", "customer_profile"]
    argv += ["--start", "2024-01-10", "--end", "2024-01-11", "--force"]
    code, out, err = run(*argv)
    assert code == 0, err
    store = FeatureStore(str(tmp_path / "example_store"), spark=spark)
    before = store.current_table_version("customer_profile", "v1")
    real_compute = FeatureGroup.compute

    def empty_upstream(self: FeatureGroup, *args: Any, **kwargs: Any) -> Any:
        rows, features = real_compute(self, *args, **kwargs)
        return rows.limit(0), features

    monkeypatch.setattr(FeatureGroup, "compute", empty_upstream)
    code, out, err = run(*argv)
    assert code == 1 and "--allow-empty" in err, err
    assert "'customer_profile'" in err and "window [2024-01-10T00:00:00+00:00, 2024-01-11" in err
    assert store.current_table_version("customer_profile", "v1") == before
    code, out, err = run(*argv, "--allow-empty")
    assert code == 0, err
    assert summary_of(out)["rows"] == 0
    assert store.read_table("customer_profile", "v1").count() == 0


def test_errors_are_one_line_with_exit_codes(
    project_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(project_file)]
    code, _, err = run("materialize", *config, "--start", "2024-02-30")
    assert code == 2 and err.count("\n") == 1 and "--start: expected a date" in err
    code, _, err = run("materialize", *config, "--start", "2024-01-01", "--interval", "1x")
    assert code == 2 and "--interval" in err
    code, _, err = run("materialize", *config, "--start", "2024-01-02", "--end", "2024-01-01")
    assert code == 2 and "must be after start" in err
    code, _, err = run("materialize", *config, "--start", "2024-01-01", "-g", "nope")
    assert code == 1 and err.startswith("seeknal-spark: error: feature group 'nope' is not in")
    code, _, err = run("materialize", *config)
    assert code == 2 and "--start" in err and err.count("\n") == 1
    code, _, err = run("frobnicate")
    assert code == 2

    bad = tmp_path / "bad.yaml"
    bad.write_text(project_file.read_text().replace("  customer:\n", "  customer:\n    keys: []\n"))
    code, _, err = run("list", "--config", str(bad))
    assert code == 2
    assert f"{bad}:" in err and "entities.customer.keys: unknown key 'keys'" in err
    with pytest.raises(ConfigurationError):
        run("list", "--config", str(bad), "--debug")
    assert run("--help")[0] == 0


def test_an_internal_bug_is_not_reported_as_bad_input(
    project_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ValueError raised by a bug used to exit 2 ("bad argument"); it is exit 1 now."""
    from seeknal_spark.app.project import Project

    def broken(self: Project, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("too many values to unpack (expected 2)")

    monkeypatch.setattr(Project, "materialize", broken)
    code, _, err = run("materialize", "--config", str(project_file), "--start", "2024-01-10")
    assert code == 1 and err.count("\n") == 1
    assert err == (
        "seeknal-spark: internal error: ValueError: too many values to unpack (expected 2) "
        "(run with --debug for the traceback)\n"
    )
    with pytest.raises(ValueError, match="too many values"):
        run("materialize", "--config", str(project_file), "--start", "2024-01-10", "--debug")


def test_progress_display() -> None:
    ticks = iter([0.0, 0.0, 10.0, 10.5, 30.0])  # start, first draw, three advances
    stream = io.StringIO()
    with Progress(
        4, label="materialize", stream=stream, enabled=True, clock=lambda: next(ticks)
    ) as progress:
        progress.advance(rows=100)  # 10 s
        progress.advance(skipped=True)
        progress.advance(rows=50)  # 19.5 s
    frames = stream.getvalue().split("\r")
    assert frames[-1].rstrip() == (
        "materialize 3/4 windows (1 skipped)  rows 150  elapsed 0:00:30  remaining ~0:00:15"
    )
    assert stream.getvalue().endswith("\n")
    quiet = io.StringIO()  # not a terminal: nothing drawn
    with Progress(2, stream=quiet) as progress:
        progress.advance(rows=1)
    assert quiet.getvalue() == ""


def test_logging_is_restored_after_a_run(project_file: Path) -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    assert run("list", "--config", str(project_file), "--log-level", "DEBUG")[0] == 0
    assert (root.level, list(root.handlers)) == before


# -- train / serve / parity / drift ------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(materialized: dict[str, Any], project_file: Path) -> dict[str, Any]:
    code, out, err = run("train", "--config", str(project_file))
    assert code == 0, err
    return summary_of(out)


@pytest.fixture(scope="module")
def served(trained: dict[str, Any], project_file: Path) -> dict[str, Any]:
    code, out, err = run(
        "serve", "--config", str(project_file), "--as-of", "2024-01-12", "--no-progress"
    )
    assert code == 0, err
    return summary_of(out)


def test_train_writes_the_training_set_with_its_manifest(
    trained: dict[str, Any], project_file: Path, spark: SparkSession
) -> None:
    from seeknal_spark.training.historical import TrainingManifest
    from seeknal_spark.training.schema import FeatureSchema

    folder = project_file.parent
    assert trained["status"] == "ok" and trained["format"] == "parquet"
    assert trained["output"] == f"{folder}/example_training"
    frame = spark.read.parquet(trained["output"])
    assert frame.count() == trained["rows"] > 0
    assert frame.columns == ["customer_id", "prediction_time", "churned", *trained["features"]]
    manifest = TrainingManifest.from_json(Path(trained["manifest"]).read_text())
    assert trained["manifest"] == f"{folder}/example_training.manifest.json"
    assert {e.feature_group: e.delta_version for e in manifest.lookups} == (
        trained["delta_versions"]
    )
    schema = FeatureSchema.load(trained["schema"])
    assert schema.feature_names == trained["features"]

    # the manifest rebuilds the same rows (same Delta versions), here as a Delta table
    rebuilt = str(folder / "rebuilt_training")
    code, out, err = run(
        "train",
        "--config",
        str(project_file),
        "--output",
        rebuilt,
        "--format",
        "delta",
        "--manifest",
        trained["manifest"],
    )
    assert code == 0, err
    again = summary_of(out)
    assert again["delta_versions"] == trained["delta_versions"]
    from pyspark.testing import assertDataFrameEqual

    assertDataFrameEqual(spark.read.format("delta").load(rebuilt), frame)
    code, _, err = run(
        "train", "--config", str(project_file), "--manifest", str(folder / "missing.json")
    )
    assert code == 2 and "no manifest file" in err


def test_serve_exports_the_lookups(served: dict[str, Any], project_file: Path) -> None:
    from seeknal_spark.online.embedded import EmbeddedSink
    from seeknal_spark.online.table import OnlineTable

    assert served["status"] == "ok" and served["table"] == "customer_features"
    assert served["as_of"] == "2024-01-12T00:00:00+00:00"
    assert set(served["lookups"]) == {"customer_spend", "customer_profile"}
    assert served["keys_written"] == sum(lk["keys"] for lk in served["lookups"].values()) > 0
    table = OnlineTable.open(
        "customer_features", sink=EmbeddedSink(str(project_file.parent / "example_online"))
    )
    assert table.feature_names == served["features"]


def test_parity_gate_passes_then_fails_with_exit_1(
    served: dict[str, Any], trained: dict[str, Any], project_file: Path, tmp_path: Path
) -> None:
    config = ["--config", str(project_file), "--table", "customer_features"]
    code, out, err = run("parity", "--schema", trained["schema"], *config, "--values")
    assert code == 0, err
    ok = summary_of(out)
    assert ok["status"] == "ok" and ok["schema_ok"] and ok["values"]["ok"]
    # every served key, then every spine row as a request (the on-demand feature)
    assert ok["values"]["keys_checked"] == served["keys_written"] + trained["rows"]
    assert ok["values"]["mismatches"]["days_since_last_txn"] == 0
    code, out, _ = run(
        "parity", "--schema", trained["schema"], *config, "--values", "--sample", "3"
    )
    assert code == 0 and summary_of(out)["values"]["keys_checked"] == 3 + 3 + 3

    schema = json.loads(Path(trained["schema"]).read_text())
    for feature in schema["features"]:
        if feature["name"] == "spend_7d":
            feature["dtype"] = "float"
    bad = tmp_path / "bad_schema.json"
    bad.write_text(json.dumps(schema))
    code, out, err = run("parity", "--schema", str(bad), *config, "--values")
    assert code == 1
    failed = summary_of(out)
    assert failed["status"] == "failed" and failed["values"].startswith("skipped")
    assert failed["problems"] == [
        "type mismatch for feature 'spend_7d': trained as float, served as double"
    ]
    assert err.startswith("seeknal-spark: error: parity failed") and "spend_7d" in err
    code, _, err = run("parity", "--schema", str(tmp_path / "none.json"), *config)
    assert code == 2 and "no feature schema" in err
    code, _, err = run(
        "parity", "--schema", trained["schema"], "--config", str(project_file), "--table", "nope"
    )
    assert code == 1 and "'nope'" in err


def test_drift_writes_a_report_and_can_gate(
    trained: dict[str, Any], tmp_path: Path, spark: SparkSession
) -> None:
    from pyspark.sql import functions as F

    reference = trained["output"]
    shifted = str(tmp_path / "shifted.parquet")
    frame = spark.read.parquet(reference)
    frame.withColumn("tenure_days", F.col("tenure_days") + 400).write.parquet(shifted)
    out_html = tmp_path / "drift.html"
    argv = [
        "drift",
        "--reference",
        reference,
        "--current",
        shifted,
        "--out",
        str(out_html),
        "--features",
        "tenure_days",
        "spend_7d",
    ]
    code, out, err = run(*argv)
    assert code == 0, err
    report = summary_of(out)
    statuses = [(f["feature"], f["status"]) for f in report["features"]]
    assert report["status"] == "alert"
    assert statuses == [("tenure_days", "alert"), ("spend_7d", "ok")]
    assert report["features"][1]["psi"] == 0.0 and report["features"][1]["ks"] == 0.0
    assert out_html.exists() and "tenure_days" in out_html.read_text()
    code, out, err = run(*argv, "--fail-on-alert", "--threshold", "psi_warn=0.05")
    assert code == 1 and "drift alert" in err and "tenure_days" in err
    code, _, err = run(*argv, "--threshold", "psi_alert")
    assert code == 2 and "--threshold" in err


def test_job_wrappers_run_the_cli(
    served: dict[str, Any], trained: dict[str, Any], project_file: Path
) -> None:
    import importlib.util
    from types import ModuleType

    root = Path(__file__).resolve().parents[2]

    def load(job: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"{job}_job", root / "jobs" / f"{job}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    for job in ("build_training", "parity", "drift"):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = load(job).main(["--bogus"])
        message = err.getvalue()
        assert code == 2 and message.count("\n") == 1, (job, message)
        assert message.startswith("seeknal-spark: error: "), message
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = load("parity").main(
            [
                "--config",
                str(project_file),
                "--schema",
                trained["schema"],
                "--table",
                "customer_features",
            ]
        )
    assert code == 0
    assert summary_of(out.getvalue())["command"] == "parity"
