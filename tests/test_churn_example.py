"""The README's main command, ``seeknal-spark run-example``, in process on tiny data."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from seeknal_spark.errors import ConfigurationError
from seeknal_spark.example.churn import ModelEncoding, churn_probabilities, load_model
from seeknal_spark.interfaces import cli
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.table import OnlineTable
from seeknal_spark.training.historical import TrainingManifest
from seeknal_spark.training.schema import FeatureSchema

FEATURES = [
    "spend_7d",
    "spend_30d",
    "txn_count_30d",
    "avg_amount_30d",
    "segment",
    "region",
    "is_premium",
    "tenure_days",
]


@pytest.fixture(scope="module")
def example(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("churn") / "example"
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "run-example",
        "--workdir",
        str(workdir),
        "--customers",
        "40",
        "--days",
        "30",
        "--seed",
        "5",
        "--trees",
        "20",
    ]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    assert code == 0, err.getvalue()
    lines = out.getvalue().strip().splitlines()
    summary: dict[str, Any] = json.loads(lines[-1])
    return {"workdir": workdir, "summary": summary, "text": "\n".join(lines[:-1])}


def test_run_example_prints_a_summary_and_a_json_line(example: dict[str, Any]) -> None:
    summary, text = example["summary"], example["text"]
    assert summary["status"] == "ok"
    probability = summary["prediction"]["churn_probability"]
    assert 0.0 <= probability <= 1.0
    assert f"churn probability {probability:.3f}" in text
    assert "0 mismatching values" in text
    assert set(summary["timings"]) >= {"materialize", "training_set", "serve", "parity", "drift"}


def test_parity_passes_with_zero_mismatches(example: dict[str, Any]) -> None:
    parity = example["summary"]["parity"]
    assert parity["schema_ok"] and parity["values_ok"]
    assert parity["mismatches"] == 0
    served = example["summary"]["serving"]["keys_written"]
    assert parity["keys_checked"] == sum(served.values()) > 0


def test_schema_model_and_manifest_are_saved(example: dict[str, Any]) -> None:
    workdir: Path = example["workdir"]
    model = example["summary"]["model"]
    schema = FeatureSchema.load(workdir / "model" / "feature_schema.json")
    assert schema.feature_names == FEATURES == model["features"]
    assert {lk.feature_group for lk in schema.lookups} == {"customer_spend", "customer_profile"}
    assert all(lk.delta_version is not None and lk.transform_hash for lk in schema.lookups)
    manifest_path = Path(example["summary"]["training"]["manifest"])
    manifest = TrainingManifest.from_json(manifest_path.read_text())
    assert [e.feature_group for e in manifest.lookups] == ["customer_spend", "customer_profile"]
    assert example["summary"]["training"]["rows"] == model["train_rows"] + model["test_rows"]


def test_the_saved_model_predicts_the_same_from_the_online_table(example: dict[str, Any]) -> None:
    """What a serving process does: load model, schema and encoding; fetch; predict."""
    workdir: Path = example["workdir"]
    prediction = example["summary"]["prediction"]
    schema = FeatureSchema.load(workdir / "model" / "feature_schema.json")
    encoding = ModelEncoding.load(workdir / "model" / "encoding.json")
    model = load_model(workdir / "model" / "model.pkl")
    table = OnlineTable.open("customer_features", sink=EmbeddedSink(str(workdir / "online")))
    features = table.get_features(
        keys=[{"customer_id": prediction["customer_id"]}], feature_names=schema.feature_names
    )
    x = encoding.transform([[features[f] for f in schema.feature_names]])
    assert encoding.transform(schema.matrix(features)) == x
    assert (
        dict(zip(schema.feature_names, schema.matrix(features)[0], strict=True))
        == (prediction["features"])
    )
    probability = churn_probabilities(model, x)[0]
    assert round(probability, 4) == prediction["churn_probability"]


def test_drift_report_is_written(example: dict[str, Any]) -> None:
    drift = example["summary"]["drift"]
    report = Path(drift["report"])
    assert report == example["workdir"] / "drift_report.html"
    html = report.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert all(name in html for name in FEATURES)
    assert drift["features"] == len(FEATURES)


def test_encoding_is_deterministic_and_rejects_unknown_types() -> None:
    schema_types = {"spend": "double", "segment": "string", "premium": "boolean"}
    encoding = ModelEncoding(("spend", "segment", "premium"), schema_types, {"segment": ("a", "b")})
    assert encoding.columns == ["spend", "segment=a", "segment=b", "premium"]
    assert encoding.transform([[1.5, "b", True], [None, "zzz", False]]) == [
        [1.5, 0.0, 1.0, 1.0],
        [-1.0, 0.0, 0.0, 0.0],
    ]
    assert ModelEncoding.from_dict(encoding.to_dict()) == encoding
    with pytest.raises(ValueError, match=r"schema\.matrix"):
        encoding.transform([[1.0]])
    with pytest.raises(ConfigurationError, match="no vocabulary"):
        ModelEncoding(("segment",), {"segment": "string"})
    with pytest.raises(ConfigurationError, match="cannot be encoded"):
        ModelEncoding(("when",), {"when": "timestamp"})


def test_missing_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from seeknal_spark.example.churn import require_sklearn

    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ConfigurationError, match=r"pip install seeknal-spark\[ml\]"):
        require_sklearn()
