"""The export of typed snapshots, hist.serve end to end, the job's command line and summary."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from seeknal_spark.app.online_export import ExportSummary, make_sink, parse_feature_group
from seeknal_spark.errors import ConfigurationError, InvalidNameError
from seeknal_spark.online import EmbeddedSink, OnlineTable, RedisSink, Snapshot, export_snapshots

UTC = timezone.utc
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "jobs"))


def test_export_of_typed_snapshots(spark: SparkSession, tmp_path: Path) -> None:
    """The online export takes typed snapshots (what HistoricalFeatures.serve builds)."""
    customer = spark.createDataFrame(
        [("C1", 1.5, 3), ("C2", 2.5, 4)], "customer_id string, spend double, n int"
    )
    product = spark.createDataFrame([(7, 10)], "sku long, stock long")
    snapshots = [
        Snapshot(
            "customer",
            "v1",
            ("customer_id",),
            customer,
            features=("spend", "n"),
            ttl=timedelta(days=2),
            delta_version=3,
            transform_hash="abc",
        ),
        Snapshot(
            "product",
            "v2",
            ("sku",),
            product,
            delta_version=0,
            transform_hash="def",
            defaults={"stock": 0},
        ),
    ]
    sink = EmbeddedSink(tmp_path)
    manifest = {"lookups": [], "computed_at": datetime(2024, 6, 2, tzinfo=UTC)}
    table = export_snapshots(
        snapshots, name="churn", sink=sink, as_of=datetime(2024, 6, 1), manifest=manifest
    )
    names = ["spend", "n", "stock"]
    features = table.get_features(keys=[{"customer_id": "C1", "sku": 7}], feature_names=names)
    assert [[features[f] for f in names]] == [[1.5, 3, 10]]
    rows = OnlineTable.open("churn", sink=sink).get_features(
        keys=[{"customer_id": "C2", "sku": 8}, {"customer_id": "C3", "sku": 7}]
    )
    assert rows.rows == [
        {"spend": 2.5, "n": 4, "stock": 0},
        {"spend": None, "n": None, "stock": 10},
    ]
    meta = table.metadata
    assert meta["as_of"] == "2024-06-01T00:00:00+00:00"
    assert [
        (lk["feature_group"], lk["version"], lk["delta_version"], lk["transform_hash"])
        for lk in meta["lookups"]
    ] == [("customer", "v1", 3, "abc"), ("product", "v2", 0, "def")]
    assert meta["lookups"][0]["ttl_seconds"] == 2 * 86400
    assert meta["manifest"]["computed_at"] == "2024-06-02T00:00:00+00:00"
    assert table.schema == T.StructType(
        [
            T.StructField("spend", T.DoubleType()),
            T.StructField("n", T.IntegerType()),
            T.StructField("stock", T.LongType()),
        ]
    )


def test_hist_serve_end_to_end_equals_the_snapshot(
    spark: SparkSession, tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real feature groups on Delta -> hist.serve -> the values of the snapshot, per key."""
    from seeknal_spark import Entity, FeatureGroup, FeatureStore
    from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures

    store = FeatureStore(str(tmp_path / "store"), spark=spark)
    rows = [
        ("c1", datetime(2024, 1, 1), 10.0, 1),
        ("c1", datetime(2024, 1, 3), 30.0, 3),
        ("c2", datetime(2024, 1, 2), 20.0, 2),
        ("c3", datetime(2023, 12, 1), 5.0, 9),  # older than the TTL at the snapshot time
    ]
    src = spark.createDataFrame(
        rows, "customer_id string, event_time timestamp, spend double, n long"
    )
    group = FeatureGroup(
        "spend",
        Entity("customer", ["customer_id"]),
        "event_time",
        lambda src: src,
        ttl=timedelta(days=5),
        inputs={"src": src},
        store=store,
    )
    group.write(datetime(2023, 11, 1), datetime(2024, 2, 1))
    hist = HistoricalFeatures([FeatureLookup(group, prefix="c_", default={"n": -1})])
    as_of = datetime(2024, 1, 4, tzinfo=UTC)
    sink = RedisSink(redis_url, key_prefix="e2e")
    table = hist.serve(name="spend_online", sink=sink, as_of=as_of)
    # what the point-in-time snapshot holds as of Jan 4 (TTL 5 days, default n=-1)
    snapshot = {
        "c1": {"c_spend": 30.0, "c_n": 3},
        "c2": {"c_spend": 20.0, "c_n": 2},
        "c3": {"c_spend": None, "c_n": -1},  # its only value is older than the TTL
    }
    names = [n for n, _, _ in hist.output_features()]
    assert names == ["c_spend", "c_n"]
    got = table.get_features(keys=[{"customer_id": k} for k in [*snapshot, "zz"]])
    assert got.rows == [*snapshot.values(), {"c_spend": None, "c_n": -1}]
    assert got.found == [True, True, True, False]
    meta = table.metadata
    (lookup,) = meta["lookups"]
    assert lookup["feature_group"] == "spend" and lookup["version"] == "v1"
    assert lookup["delta_version"] == store.current_table_version("spend", "v1")
    assert lookup["transform_hash"] == group.transform_hash()
    assert lookup["ttl_seconds"] == 5 * 86400
    assert meta["manifest"]["lookups"][0]["delta_version"] == lookup["delta_version"]
    assert meta["features"] == {"c_spend": "double", "c_n": "bigint"}

    # the spark-submit job (run in this process, on the active session) serves the same
    import export_online

    code = export_online.main(
        [
            "--store",
            str(tmp_path / "store"),
            "--feature-group",
            "spend:v1",
            "--name",
            "spend_job",
            "--online-dir",
            str(tmp_path / "online"),
            "--as-of",
            "2024-01-04T00:00:00+00:00",
        ]
    )
    assert code == 0
    assert "online table spend_job: 3 keys written" in capsys.readouterr().out
    job_table = OnlineTable.open("spend_job", sink=EmbeddedSink(tmp_path / "online"))
    served = job_table.get_features(keys=[{"customer_id": k} for k in snapshot])
    # no prefix and no default in the job: plain feature names, the snapshot's values
    assert [r["spend"] for r in served] == [snapshot[k]["c_spend"] for k in snapshot]
    assert (
        export_online.main(
            [
                "--store",
                str(tmp_path / "store"),
                "--feature-group",
                "nope",
                "--name",
                "x",
                "--online-dir",
                str(tmp_path / "online"),
            ]
        )
        == 1
    )
    assert "nope" in capsys.readouterr().err


def test_job_arguments_and_summary() -> None:
    import export_online

    args = export_online.parse_args(
        [
            "--store",
            "/s",
            "--feature-group",
            "a",
            "--feature-group",
            "b:v2",
            "--name",
            "t",
            "--as-of",
            "2024-06-01T00:00:00+00:00",
            "--redis-url",
            "redis://h:1/0",
        ]
    )
    assert [parse_feature_group(g) for g in args.feature_groups] == [("a", None), ("b", "v2")]
    assert args.as_of == datetime(2024, 6, 1, tzinfo=UTC) and args.redis_url == "redis://h:1/0"
    with pytest.raises(InvalidNameError):
        parse_feature_group("bad-name:v1")
    assert isinstance(make_sink(redis_url="redis://h:1/0"), RedisSink)
    assert isinstance(make_sink(online_dir="/tmp/x"), EmbeddedSink)
    with pytest.raises(ConfigurationError):
        make_sink(redis_url="redis://h:1/0", online_dir="/tmp/x")
    summary = ExportSummary(
        "t", "3", 12, 1.25, "Redis at redis://h:1/0", "2024-06-01", (("a", "v1", 12),)
    )
    assert str(summary).startswith("online table t: 12 keys written in 1.2 s to Redis")
