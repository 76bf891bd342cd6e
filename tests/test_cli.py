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

from seeknal_spark import cli
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.feature_group import FeatureGroup
from seeknal_spark.progress import Progress
from seeknal_spark.store import FeatureStore

EXAMPLE = Path(__file__).resolve().parents[1] / "conf" / "example.yaml"
WINDOW = ["--start", "2024-01-10", "--end", "2024-01-12", "--interval", "1d"]


def small_project(folder: Path) -> Path:
    """The example project with tiny data and every path under ``folder``."""
    text = EXAMPLE.read_text()
    for old, new in (
        ("n_customers: 500, n_days: 90", "n_customers: 30, n_days: 20"),
        ("./runs/", f"{folder}/"),
    ):
        assert old in text
        text = text.replace(old, new)
    path = folder / "project.yaml"
    path.write_text(text)
    return path


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
    assert lines[1].split()[:5] == ["customer_spend", "customer", "v1", "v1", "4"]
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
    ]
    assert described["transform_hash"] == described["config"]["transform_hash"]
    assert described["config"]["inputs"] == ["transactions"]
    assert described["ttl_seconds"] == 30 * 86400

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
    assert err.strip().splitlines()[-1] == "seeknal-spark: error: RuntimeError: executor lost"
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
