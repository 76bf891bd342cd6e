"""The README's main command, ``seeknal-spark run-example``, in process on tiny data."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from seeknal_spark.errors import ConfigurationError
from seeknal_spark.example.churn import (
    ModelEncoding,
    churn_features,
    churn_probabilities,
    load_model,
)
from seeknal_spark.example.features import DAYS_SINCE_LAST_TXN, example_feature_groups
from seeknal_spark.interfaces import cli
from seeknal_spark.monitoring.parity import check_values, validate_parity
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.redis import RedisSink
from seeknal_spark.online.table import OnlineTable
from seeknal_spark.store.feature_store import FeatureStore
from seeknal_spark.training.historical import TrainingManifest
from seeknal_spark.training.schema import FeatureSchema
from tests.redis_server import redis_url

__all__ = ["redis_url"]

FEATURES = [
    "spend_7d",
    "spend_30d",
    "txn_count_30d",
    "avg_amount_30d",
    "last_txn_time",
    "segment",
    "region",
    "is_premium",
    "tenure_days",
    "days_since_last_txn",  # on-demand: the request's time against last_txn_time
]
#: The model's inputs: every feature but the timestamp ``last_txn_time``.
MODEL_FEATURES = [f for f in FEATURES if f != "last_txn_time"]


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
    spine_rows = example["summary"]["training"]["rows"]  # every spine row, as a request
    assert parity["keys_checked"] == sum(served.values()) + spine_rows > spine_rows > 0


def test_schema_model_and_manifest_are_saved(example: dict[str, Any]) -> None:
    workdir: Path = example["workdir"]
    model = example["summary"]["model"]
    schema = FeatureSchema.load(workdir / "model" / "feature_schema.json")
    assert schema.feature_names == FEATURES == model["features"]
    assert schema.types["last_txn_time"] == "timestamp"
    assert model["skipped_features"] == ["last_txn_time"]
    assert "last_txn_time" not in model["model_columns"]
    encoding = ModelEncoding.load(workdir / "model" / "encoding.json")
    assert encoding.model_features == MODEL_FEATURES and encoding.skipped == ("last_txn_time",)
    assert (
        TrainingManifest.from_json(
            Path(example["summary"]["training"]["manifest"]).read_text()
        ).inclusive
        is False
    )  # features strictly before the prediction time
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
    table = OnlineTable.open(
        "customer_features",
        sink=EmbeddedSink(str(workdir / "online")),
        on_demand=[DAYS_SINCE_LAST_TXN],  # the definition training used, from its module
    )
    validate_parity(schema, table)
    now = datetime.fromisoformat(example["summary"]["window"][1])  # the request's time
    features = table.get_features(
        keys=[{"customer_id": prediction["customer_id"]}],
        feature_names=schema.feature_names,
        request={"prediction_time": now},
    )
    days = (now - features["last_txn_time"]).total_seconds() / 86_400
    assert features["days_since_last_txn"] == days
    x = encoding.transform([[features[f] for f in schema.feature_names]])
    assert encoding.transform(schema.matrix(features)) == x
    served = dict(zip(schema.feature_names, schema.matrix(features)[0], strict=True))
    last = served["last_txn_time"]  # the latest transaction of the customer, as a UTC instant
    assert (
        isinstance(last, datetime) and last.isoformat() == prediction["features"]["last_txn_time"]
    )
    assert {**served, "last_txn_time": last.isoformat()} == prediction["features"]
    probability = churn_probabilities(model, x)[0]
    assert round(probability, 4) == prediction["churn_probability"]


def test_the_example_served_to_redis_has_zero_mismatches(
    example: dict[str, Any], spark: SparkSession, redis_url: str
) -> None:
    """The example's features (spend windows and profile) served to Redis equal the
    point-in-time join, key by key, as on the embedded store."""
    workdir: Path = example["workdir"]
    summary = example["summary"]
    groups = example_feature_groups(
        FeatureStore(str(workdir / "store"), spark=spark), str(workdir / "data")
    )
    hist = churn_features(groups)
    table = hist.serve(
        "customer_features",
        sink=RedisSink(redis_url, key_prefix="churn_example"),
        as_of=datetime.fromisoformat(summary["window"][1]),
    )
    validate_parity(FeatureSchema.load(workdir / "model" / "feature_schema.json"), table)
    spine = spark.read.parquet(summary["data"]["churn_spine"])
    report = check_values(table, hist, requests=spine)
    assert report.ok and report.total_mismatches == 0, report.to_dict()
    keys = sum(summary["serving"]["keys_written"].values())
    assert report.keys_checked == keys + summary["training"]["rows"] > keys > 0
    assert sorted(report.features) == sorted(FEATURES)
    # the timestamp feature round-trips through Redis as the same UTC instant
    prediction = summary["prediction"]
    served = table.get_features(
        keys=[{"customer_id": prediction["customer_id"]}], feature_names=["last_txn_time"]
    )
    assert served["last_txn_time"].isoformat() == prediction["features"]["last_txn_time"]


def test_drift_report_is_written(example: dict[str, Any]) -> None:
    drift = example["summary"]["drift"]
    report = Path(drift["report"])
    assert report == example["workdir"] / "drift_report.html"
    html = report.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert all(name in html for name in MODEL_FEATURES)
    assert drift["features"] == len(MODEL_FEATURES)  # the model's inputs


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


def test_timestamp_features_are_skipped_explicitly() -> None:
    when = datetime(2024, 1, 2, tzinfo=timezone.utc)
    types = {"spend": "double", "when": "timestamp"}
    encoding = ModelEncoding(("spend", "when"), types, skipped=("when",))
    assert encoding.columns == encoding.model_features == ["spend"]
    assert encoding.transform([[1.5, when], [None, None]]) == [[1.5], [-1.0]]
    assert ModelEncoding.from_dict(encoding.to_dict()) == encoding
    with pytest.raises(ValueError, match=r"schema\.matrix"):
        encoding.transform([[1.5]])  # rows keep the skipped values, in schema order
    with pytest.raises(ConfigurationError, match="not among the features"):
        ModelEncoding(("spend",), types, skipped=("when",))


def test_missing_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from seeknal_spark.example.churn import require_sklearn

    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ConfigurationError, match=r"pip install seeknal-spark\[ml\]"):
        require_sklearn()
