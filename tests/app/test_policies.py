"""One policy each, whoever asks: default version, sink factory, session, input format."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from seeknal_spark.app import project as project_module
from seeknal_spark.app.config import OnlineConfig, RedisSinkConfig, SparkConfig, parse_config
from seeknal_spark.app.online_export import run_export
from seeknal_spark.app.project import Project, session_for
from seeknal_spark.app.sinks import make_sink, sink_from_config
from seeknal_spark.app.versions import latest_version
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.errors import ConfigurationError, NotFoundError
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.redis import RedisSink
from seeknal_spark.online.table import OnlineTable
from seeknal_spark.store.feature_group import FeatureGroup
from seeknal_spark.store.feature_store import FeatureStore


def test_export_without_a_version_serves_the_latest_registered_one(
    spark: SparkSession, tmp_path: Path
) -> None:
    """run_export used to default to v1 while the store's other readers took the latest."""
    store = FeatureStore(str(tmp_path / "store"), spark=spark)
    for version, spend in (("v1", 1.0), ("v2", 2.0)):
        src = spark.createDataFrame(
            [("c1", datetime(2024, 1, 1), spend)], "customer_id string, day timestamp, spend double"
        )
        FeatureGroup(
            "spend",
            Entity("customer", ["customer_id"]),
            "day",
            lambda src: src,
            inputs={"src": src},
            store=store,
        ).write(datetime(2024, 1, 1), datetime(2024, 1, 2), version=version)
    assert latest_version(store, "spend") == "v2"
    summary = run_export(
        store_path=str(tmp_path / "store"),
        feature_groups=["spend"],
        name="spend_online",
        online_dir=str(tmp_path / "online"),
        as_of=datetime(2024, 1, 2),
        spark=spark,
    )
    assert summary.lookups == (("spend", "v2", 1),)
    table = OnlineTable.open("spend_online", sink=EmbeddedSink(tmp_path / "online"))
    assert table.get_features(keys=[{"customer_id": "c1"}])["spend"] == 2.0
    with pytest.raises(NotFoundError, match="'nope'"):
        latest_version(store, "nope")


def test_one_sink_factory_for_jobs_and_projects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", "secret")
    embedded = sink_from_config(OnlineConfig(), source="demo.yaml")
    assert isinstance(embedded, EmbeddedSink)
    assert embedded.path == make_sink().path  # type: ignore[attr-defined]
    online = OnlineConfig(
        sink="redis", redis=RedisSinkConfig(url="redis://h:1/0", key_prefix="p", password_env="PW")
    )
    redis = sink_from_config(online)
    assert (
        isinstance(redis, RedisSink)
        and redis.describe()
        == make_sink(redis_url="redis://h:1/0", redis_password_env="PW", key_prefix="p").describe()
    )
    with pytest.raises(ConfigurationError, match=r"no online\.redis section"):
        sink_from_config(OnlineConfig(), "redis", "demo.yaml")
    with pytest.raises(ConfigurationError, match="not both"):
        make_sink(redis_url="redis://h:1/0", online_dir=str(tmp_path))


def test_the_project_session_is_get_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    """session_for is get_spark with the file's settings (so its spark-submit check applies)."""
    calls: list[tuple[object, ...]] = []

    def fake_get_spark(app_name: str, **kwargs: object) -> str:
        calls.append((app_name, *sorted(kwargs.items())))
        return "session"

    monkeypatch.setattr(project_module, "get_spark", fake_get_spark)
    conf = SparkConfig(master="local[1]", app_name="demo", conf={"a": "b"})
    assert session_for(conf) == "session"  # type: ignore[comparison-overlap]
    assert calls == [("demo", ("conf", {"a": "b"}), ("jars_dir", None), ("master", "local[1]"))]


def test_project_inputs_follow_the_input_format_policy(spark: SparkSession, tmp_path: Path) -> None:
    """A suffix-less folder of Parquet files is read as Parquet (not Delta), as everywhere."""
    folder = tmp_path / "txns"
    spark.createDataFrame([("c1", 1.0)], "customer_id string, amount double").write.parquet(
        str(folder)
    )
    cfg = parse_config(
        f"project: {{name: demo}}\nstore: {{path: {tmp_path}/store}}\n"
        f"inputs: {{txns: {{path: {folder}}}, missing: {{path: {tmp_path}/none.parquet}}}}\n"
    )
    project = Project.from_config(cfg, spark=spark)
    assert project.read_input("txns").count() == 1
    with pytest.raises(NotFoundError, match="input 'missing'"):
        project.read_input("missing")
