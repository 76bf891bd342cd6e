"""The export job and the online table, as one contract run on every sink."""

from __future__ import annotations

import math
import os
import pickle
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import SparkSession

from seeknal_spark.errors import (
    ConfigurationError,
    MissingColumnError,
    NotFoundError,
    OnlineStoreError,
    SchemaError,
)
from seeknal_spark.online import OnlineTable, RedisSink, Snapshot, export_snapshots

UTC = timezone.utc

SCHEMA = (
    "customer_id string, spend double, ratio float, n long, small int, label string, flag boolean, "
    "seen timestamp, day date, amount decimal(18,4), hist array<double>, tags map<string,long>"
)


def _rows() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(40):
        rows.append(
            (
                f"C{i:03d}",
                i / 7 + 0.1,
                float(i) / 3,
                2**62 + i,
                -i,
                f"naïve-{i}-日本",
                i % 2 == 0,
                datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=i, microseconds=i),
                date(2024, 1, 1) + timedelta(days=i),
                Decimal(f"{i}.0001"),
                [i * 0.1, None, math.inf],
                {"k": i},
            )
        )
    rows.append(("NULLS", None, None, None, None, None, None, None, None, None, None, None))
    rows.append(
        (
            "SPECIAL",
            math.nan,
            -math.inf,
            -(2**63),
            0,
            "",
            False,
            datetime(1970, 1, 1, tzinfo=UTC),
            date(1970, 1, 1),
            Decimal("0.0000"),
            [],
            {},
        )
    )
    return rows


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.replace(tzinfo=UTC) == b.astimezone(UTC)
    return bool(a == b) and type(a) is type(b)


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_served_values_equal_the_snapshot(spark: SparkSession, sink: Any) -> None:
    df = spark.createDataFrame(_rows(), SCHEMA).repartition(3)
    table = export_snapshots(
        [Snapshot("customer", "v1", ("customer_id",), df)], name="cust_online", sink=sink
    )
    expected = {r["customer_id"]: r.asDict() for r in df.collect()}
    names = table.feature_names
    assert names == [c for c in df.columns if c != "customer_id"]
    got = table.get_features(keys=[{"customer_id": k} for k in expected], feature_names=names)
    assert len(got) == len(expected) and all(got.found)
    for key, row in zip(expected, got, strict=True):
        for f in names:
            assert _same(row[f], expected[key][f]), (key, f, row[f], expected[key][f])
    # the single-key line of the docs works as written
    features = table.get_features(keys=[{"customer_id": "C001"}], feature_names=names)
    x = [[features[f] for f in names]]
    assert x[0][0] == expected["C001"]["spend"]
    assert table.schema == df.drop("customer_id").schema


def test_lookups_with_different_entities_in_one_call(spark: SparkSession, sink: Any) -> None:
    cust = spark.createDataFrame([("C1", 1.0), ("C2", 2.0)], "customer_id string, spend double")
    prod = spark.createDataFrame(
        [("1", "12", 10), ("11", "2", 20)], "shop string, sku string, stock long"
    )
    table = export_snapshots(
        [
            Snapshot("customer", "v1", ("customer_id",), cust, ttl=timedelta(days=1)),
            Snapshot(
                "product",
                "v3",
                ("shop", "sku"),
                prod,
                delta_version=4,
                transform_hash="h",
                defaults={"stock": -1},
            ),
        ],
        name="multi",
        sink=sink,
        as_of=datetime(2024, 6, 1),
        manifest={"written": datetime(2024, 6, 1, tzinfo=UTC)},
    )
    got = table.get_features(
        keys=[
            {"customer_id": "C1", "shop": "1", "sku": "12"},
            {"customer_id": "C2", "shop": "11", "sku": "2"},
            {"customer_id": "C9", "shop": "1", "sku": "122"},
        ],
        feature_names=["stock", "spend"],
    )
    assert got.rows == [
        {"stock": 10, "spend": 1.0},
        {"stock": 20, "spend": 2.0},
        {"stock": -1, "spend": None},  # the declared default, as in training
    ]
    assert got.found == [True, True, False]
    meta = OnlineTable.open("multi", sink=sink).metadata
    assert meta["as_of"] == "2024-06-01T00:00:00+00:00"
    assert [lk["feature_group"] for lk in meta["lookups"]] == ["customer", "product"]
    assert meta["lookups"][1]["delta_version"] == 4 and meta["lookups"][1]["version"] == "v3"
    assert meta["lookups"][0]["ttl_seconds"] == 86400 and meta["lookups"][1]["keys_written"] == 2
    assert meta["features"] == {"spend": "double", "stock": "bigint"}
    with pytest.raises(MissingColumnError, match="'sku'"):
        table.get_features(keys=[{"customer_id": "C1", "shop": "1"}], feature_names=["stock"])
    # keys of the other lookup are not needed when only its features are asked for
    assert table.get_features(keys={"customer_id": "C2"}, feature_names=["spend"])["spend"] == 2.0


def test_unknown_feature_and_table(spark: SparkSession, sink: Any) -> None:
    df = spark.createDataFrame([(1, 1.0)], "id long, x double")
    table = export_snapshots([Snapshot("g", "v1", ("id",), df)], name="errs", sink=sink)
    with pytest.raises(NotFoundError, match=r"'nope'.*available: x"):
        table.get_features(keys=[{"id": 1}], feature_names=["nope"])
    assert table.get_features(keys=[{"id": "1"}])["x"] == 1.0  # "1" coerced to the long key
    with pytest.raises(NotFoundError, match="no snapshot"):
        OnlineTable.open("never_exported", sink=sink)
    with pytest.raises(MissingColumnError, match="'customer_id'"):
        export_snapshots([Snapshot("g", "v1", ("customer_id",), df)], name="errs", sink=sink)
    dup = [Snapshot("g", "v1", ("id",), df), Snapshot("h", "v1", ("id",), df)]
    with pytest.raises(SchemaError, match="'x'"):
        export_snapshots(dup, name="errs", sink=sink)


def test_new_export_replaces_and_removes_the_old_generation(spark: SparkSession, sink: Any) -> None:
    one = spark.createDataFrame([("a", 1), ("b", 2)], "k string, v long")
    two = spark.createDataFrame([("a", 10), ("c", 30)], "k string, v long")
    first = export_snapshots([Snapshot("g", "v1", ("k",), one)], name="gens", sink=sink)
    gen1 = first.metadata["generation"]
    second = export_snapshots([Snapshot("g", "v2", ("k",), two)], name="gens", sink=sink)
    gen2 = second.metadata["generation"]
    assert gen1 != gen2 and sink.generations("gens") == [gen2]
    if isinstance(sink, RedisSink):  # the old generation's data and metadata are gone
        left = {k.decode() for k in sink.client().scan_iter(f"{sink.key_prefix}:gens:[0-9]*")}
        assert left == {f"{sink.key_prefix}:gens:{gen2}:0", f"{sink.key_prefix}:gens:{gen2}:m"}
    got = first.get_features(keys=[{"k": "a"}, {"k": "b"}, {"k": "c"}])
    assert got.generation == gen2 and [r["v"] for r in got] == [10, None, 30]
    assert first.metadata["lookups"][0]["version"] == "v2"


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_keys_expire_after_ttl(spark: SparkSession, sink: Any) -> None:
    df = spark.createDataFrame([("a", 1)], "k string, v long")
    ttl = timedelta(hours=1)
    fresh = export_snapshots(
        [Snapshot("g", "v1", ("k",), df, ttl=ttl)], name="ttl_fresh", sink=sink, expire_keys=True
    )
    assert fresh.get_features(keys=[{"k": "a"}])["v"] == 1
    if isinstance(sink, RedisSink):
        gen = fresh.metadata["generation"]
        assert 0 < sink.client().pttl(f"{sink.key_prefix}:ttl_fresh:{gen}:0") <= 3600_000
    stale = export_snapshots(
        [Snapshot("g", "v1", ("k",), df, ttl=ttl)],
        name="ttl_stale",
        sink=sink,
        expire_keys=True,
        as_of=datetime.now(UTC) - 2 * ttl,
    )
    got = stale.get_features(keys=[{"k": "a"}])
    assert got["v"] is None and got.found == [False]


@pytest.mark.parametrize("sink_kind", ["redis"])
def test_redis_down_is_an_online_store_error(spark: SparkSession, sink_kind: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    sink = RedisSink(f"redis://:s3cret@127.0.0.1:{port}/0", socket_timeout=2)
    with pytest.raises(OnlineStoreError) as err:
        OnlineTable.open("t", sink=sink)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "s3cret" not in message
    assert "redis-server" in message
    df = spark.createDataFrame([("a", 1)], "k string, v long")
    with pytest.raises(OnlineStoreError, match=f"127.0.0.1:{port}"):
        export_snapshots([Snapshot("g", "v1", ("k",), df)], name="down", sink=sink)


class _ClusterSession:
    """Stands for a session whose executors run on other hosts."""

    class conf:  # noqa: N801 (the attribute of a SparkSession)
        @staticmethod
        def get(key: str, default: str | None = None) -> str | None:
            return "spark://10.0.0.7:7077" if key == "spark.master" else default


@pytest.mark.parametrize("sink_kind", ["redis"])
def test_redis_password_from_env(
    spark: SparkSession, redis_url: str, monkeypatch: pytest.MonkeyPatch, sink_kind: str
) -> None:
    with pytest.raises(ConfigurationError, match="SEEKNAL_TEST_REDIS_PW"):
        RedisSink(redis_url, password_env="SEEKNAL_TEST_REDIS_PW")
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisSink("http://127.0.0.1:1/0")
    admin = RedisSink(redis_url).client()
    admin.config_set("requirepass", "pw-1")
    try:
        monkeypatch.setenv("SEEKNAL_TEST_REDIS_PW", "pw-1")
        sink = RedisSink(redis_url, password_env="SEEKNAL_TEST_REDIS_PW", key_prefix="pw")
        df = spark.createDataFrame([("a", 1)], "k string, v long")
        table = export_snapshots([Snapshot("g", "v1", ("k",), df)], name="pw", sink=sink)
        assert table.get_features(keys=[{"k": "a"}])["v"] == 1
        assert "pw-1" not in repr(sink)
        # tasks for executors elsewhere carry the variable's name, never the password
        assert sink.for_executors(spark) is sink  # a local master: tasks stay on this host
        remote = pickle.dumps(sink.for_executors(_ClusterSession()))  # type: ignore[arg-type]
        assert b"pw-1" not in remote and b"SEEKNAL_TEST_REDIS_PW" in remote
        pickle.loads(remote).open_writer("pw", "1").close()  # reads the variable here
        monkeypatch.delenv("SEEKNAL_TEST_REDIS_PW")
        with pytest.raises(OnlineStoreError, match=r"spark\.executorEnv\.SEEKNAL_TEST_REDIS_PW"):
            pickle.loads(remote).open_writer("pw", "1")
        wrong = RedisSink(redis_url.replace("redis://", "redis://:bad@"), key_prefix="pw")
        with pytest.raises(OnlineStoreError, match="password"):
            OnlineTable.open("pw", sink=wrong)
    finally:
        admin.execute_command("AUTH", "pw-1")
        admin.config_set("requirepass", "")


def test_embedded_sink_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from seeknal_spark.online import EmbeddedSink

    monkeypatch.setenv("SEEKNAL_ONLINE_DIR", str(tmp_path / "here"))
    assert EmbeddedSink().path == os.path.abspath(tmp_path / "here")


def test_rediss_urls_use_tls() -> None:
    sink = RedisSink("rediss://:pw@cache.example.com:6380/2?ssl_cert_reqs=none")
    pool = sink.client().connection_pool
    assert pool.connection_class.__name__ == "SSLConnection"
    assert pool.connection_kwargs["host"] == "cache.example.com"
    assert "pw" not in repr(sink) and "pw" not in sink.describe()
