"""On-demand features: one definition computed in the training set (Spark) and at serving
(``get_features(request=...)``), equal on both sinks; their identity in the feature schema
and parity checks; every error named; Spark and serving equal on random inputs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark import cloudpickle
from pyspark.sql import SparkSession

from seeknal_spark import (
    Entity,
    FeatureGroup,
    FeatureStore,
    OnDemandFeature,
    OnDemandFeatureError,
    OnlineTable,
)
from seeknal_spark._timestamps import utc_literal
from seeknal_spark.definitions.on_demand import compute, order_on_demand
from seeknal_spark.errors import (
    ConfigurationError,
    MissingColumnError,
    NotFoundError,
    ParityError,
)
from seeknal_spark.monitoring.parity import check_values, validate_parity
from seeknal_spark.monitoring.parity import values_equal as same
from seeknal_spark.online import EmbeddedSink, OnlineSink, RedisSink
from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures
from seeknal_spark.training.on_demand import attach_on_demand
from seeknal_spark.training.schema import FeatureSchema
from tests.redis_server import redis_url

__all__ = ["redis_url"]

# the functions below are defined in this test module, which Spark's Python workers cannot
# import: ship them by value (a user's module would be on the workers' path, as for any UDF)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CUSTOMER = Entity("customer", ["customer_id"])
PRODUCT = Entity("product", ["product_id"])
AS_OF = datetime(2024, 1, 20, tzinfo=timezone.utc)


def ratio(amount: float, avg_amount: float) -> float:
    """Amount against the customer's average (a def: hashed by its syntax)."""
    return amount / max(avg_amount, 1.0)


def boost(amount: pd.Series, price: pd.Series, amount_vs_avg: pd.Series) -> pd.Series:
    """Vectorised: Series in, Series out; reads another on-demand feature."""
    return amount_vs_avg * 2.0 + price.fillna(0.0) - amount * 0.0


AMOUNT_VS_AVG = OnDemandFeature("amount_vs_avg", ["amount", "avg_amount"], "double", ratio)
HOUR = OnDemandFeature(
    "request_hour", ["prediction_time"], "int", lambda prediction_time: prediction_time.hour
)
BOOST = OnDemandFeature(
    "boost", ["amount", "price", "amount_vs_avg"], "double", boost, mode="pandas"
)
BIG = OnDemandFeature(
    "big", ["amount_vs_avg"], "boolean", lambda amount_vs_avg: amount_vs_avg > 1.5
)
LABEL = OnDemandFeature(
    "label",
    ["tier", "customer_id", "txn_count"],
    "string",
    lambda tier, customer_id, txn_count: f"{tier or 'none'}:{customer_id}:{txn_count}",
)
#: declared with a dependent before its input: evaluated in dependency order
ON_DEMAND = [BOOST, AMOUNT_VS_AVG, HOUR, BIG, LABEL]
NAMES = [f.name for f in ON_DEMAND]


@dataclass
class World:
    store: FeatureStore
    lookups: list[FeatureLookup]
    spine: Any

    def hist(self, on_demand: list[OnDemandFeature] | None = None) -> HistoricalFeatures:
        return HistoricalFeatures(
            self.lookups, on_demand=ON_DEMAND if on_demand is None else on_demand
        )


@pytest.fixture(scope="module")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> World:
    store = FeatureStore(str(tmp_path_factory.mktemp("od") / "store"), spark=spark)
    spend_rows = spark.createDataFrame(
        [
            ("a", datetime(2024, 1, 2), 40.0, 3, "gold"),
            ("a", datetime(2024, 1, 10), 80.0, 7, "gold"),
            ("b", datetime(2024, 1, 5), 0.5, 1, None),
            ("c", datetime(2024, 1, 6), 12.0, 2, "silver"),
        ],
        "customer_id string, day timestamp, avg_amount double, txn_count bigint, tier string",
    )
    prices = spark.createDataFrame(
        [(1, datetime(2024, 1, 1), 9.5), (2, datetime(2024, 1, 3), 20.0)],
        "product_id int, day timestamp, price double",
    )
    spend = FeatureGroup(
        "spend", CUSTOMER, "day", transform=lambda src: src, inputs={"src": spend_rows}, store=store
    )
    price = FeatureGroup(
        "prices", PRODUCT, "day", transform=lambda src: src, inputs={"src": prices}, store=store
    )
    spend.write(feature_start_time=datetime(2024, 1, 1))
    price.write(feature_start_time=datetime(2024, 1, 1))
    lookups = [
        FeatureLookup(spend, default={"avg_amount": 0.0, "txn_count": 0}),
        FeatureLookup(price),
    ]
    spine = spark.createDataFrame(
        [
            ("a", 1, datetime(2024, 1, 3, 7), 120.0),
            ("a", 2, datetime(2024, 1, 12, 23, 30), 10.0),
            ("b", 1, datetime(2024, 1, 6, 1), 3.0),
            ("c", 3, datetime(2024, 1, 7, 12), 30.0),  # unknown product: null price
            ("z", 2, datetime(2024, 1, 8, 5), 7.0),  # unknown customer: defaults
        ],
        "customer_id string, product_id int, prediction_time timestamp, amount double",
    )
    return World(store, lookups, spine)


def _expected(row: dict[str, Any]) -> dict[str, Any]:
    """The oracle: the definitions' arithmetic written out by hand for one row."""
    vs = row["amount"] / max(row["avg_amount"], 1.0)
    hour = row["prediction_time"].astimezone(timezone.utc).hour
    price = row["price"] if row["price"] is not None else 0.0
    return {
        "amount_vs_avg": vs,
        "request_hour": hour,
        "boost": vs * 2.0 + price,
        "big": vs > 1.5,
        "label": f"{row['tier'] or 'none'}:{row['customer_id']}:{row['txn_count']}",
    }


def _rows(df: Any) -> list[dict[str, Any]]:
    from seeknal_spark.monitoring.parity import _collect_instants

    return sorted(_collect_instants(df), key=lambda r: (r["customer_id"], r["prediction_time"]))


def test_training_set_computes_on_demand_columns(world: World, session_zone: str) -> None:
    hist = world.hist()
    df = hist.to_dataframe(world.spine)
    assert df.columns == [
        *world.spine.columns,
        "avg_amount",
        "txn_count",
        "tier",
        "price",
        *NAMES,
    ]
    types = dict(df.dtypes)
    assert [types[n] for n in NAMES] == ["double", "double", "int", "boolean", "string"]
    rows = _rows(df)
    assert len(rows) == 5
    assert rows[-1]["avg_amount"] == 0.0 and rows[-1]["txn_count"] == 0  # defaults first
    for row in rows:
        expected = _expected(row)
        assert {n: row[n] for n in NAMES} == expected, row


def test_feature_schema_records_on_demand_identity(world: World, tmp_path: Path) -> None:
    schema = world.hist().feature_schema()
    assert schema.feature_names[-5:] == NAMES
    by_name = {od.name: od for od in schema.on_demand}
    assert by_name["boost"].inputs == ("amount", "price", "amount_vs_avg")
    assert by_name["boost"].mode == "pandas" and by_name["request_hour"].output_type == "int"
    assert by_name["amount_vs_avg"].code_hash == AMOUNT_VS_AVG.code_hash
    schema.save(tmp_path / "schema.json")
    assert FeatureSchema.load(tmp_path / "schema.json") == schema


def _sink(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> OnlineSink:
    if kind == "redis":
        return RedisSink(request.getfixturevalue("redis_url"), key_prefix=f"od{id(tmp_path)}")
    return EmbeddedSink(tmp_path / "online")


@pytest.fixture(params=["embedded", "redis"])
def served(
    world: World, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[HistoricalFeatures, OnlineTable]]:
    hist = world.hist()
    table = hist.serve("od_table", sink=_sink(request.param, tmp_path, request), as_of=AS_OF)
    yield hist, table


def test_served_values_equal_training_values(
    world: World, served: tuple[HistoricalFeatures, OnlineTable]
) -> None:
    hist, table = served
    spine = world.spine.withColumn("prediction_time", utc_literal(AS_OF))
    offline = _rows(hist.to_dataframe(spine))
    keys = [{"customer_id": r["customer_id"], "product_id": r["product_id"]} for r in offline]
    requests = [{"amount": r["amount"], "prediction_time": AS_OF} for r in offline]
    online = table.get_features(keys=keys, request=requests, feature_names=NAMES)
    assert len(online) == len(offline) > 0
    for off, on in zip(offline, online, strict=True):
        for name in NAMES:
            assert same(off[name], on[name]), (name, off, on)
    one = table.get_features(
        keys={"customer_id": "a", "product_id": 1},
        request={"amount": 120.0, "prediction_time": datetime(2024, 1, 20, 9)},
        feature_names=["amount_vs_avg", "avg_amount", "request_hour"],
    )
    assert one.rows == [{"amount_vs_avg": 1.5, "avg_amount": 80.0, "request_hour": 9}]
    report = check_values(table, hist, requests=world.spine)
    assert report.ok, report.to_dict()
    assert set(NAMES) <= set(report.features) and report.keys_checked == 3 + 2 + 5


def test_parity_names_a_changed_on_demand_feature(
    world: World, served: tuple[HistoricalFeatures, OnlineTable]
) -> None:
    hist, table = served
    schema = hist.feature_schema()
    validate_parity(schema, table)
    reopened = OnlineTable.open(table.name, sink=table.sink, on_demand=ON_DEMAND)
    validate_parity(schema, reopened)
    changed = [
        OnDemandFeature(
            "amount_vs_avg", ["amount", "avg_amount"], "double", lambda a, b: a / (b + 1.0)
        ),
        OnDemandFeature("request_hour", ["prediction_time"], "bigint", HOUR.fn),
        OnDemandFeature("big", ["amount_vs_avg", "amount"], "boolean", lambda v, a: v > 1.5),
        BOOST,
        LABEL,
    ]
    skewed = OnlineTable.open(table.name, sink=table.sink, on_demand=changed)
    with pytest.raises(ParityError) as info:
        validate_parity(schema, skewed)
    text = "\n".join(info.value.problems)
    assert "'amount_vs_avg'" in text and "code hash" in text
    assert "'request_hour'" in text and "output type int -> bigint" in text
    assert "'big'" in text and "inputs" in text
    assert "'boost'" not in text and "'label'" not in text
    # a snapshot exported without on-demand features lacks them
    plain = HistoricalFeatures(world.lookups).serve("od_plain", sink=table.sink, as_of=AS_OF)
    with pytest.raises(ParityError, match="on-demand feature 'boost' is not computed"):
        validate_parity(schema, plain)
    # opened without the functions: asking for one says what to pass
    bare = OnlineTable.open(table.name, sink=table.sink)
    with pytest.raises(NotFoundError, match=r"on_demand=\[\.\.\.\]"):
        bare.get_features({"customer_id": "a"}, feature_names=["big"], request={"amount": 1.0})


def test_online_errors_name_the_field_feature_and_row(
    served: tuple[HistoricalFeatures, OnlineTable],
) -> None:
    _, table = served
    key = {"customer_id": "a", "product_id": 1}
    with pytest.raises(MissingColumnError, match="'amount_vs_avg' needs request field 'amount'"):
        table.get_features(key, feature_names=["amount_vs_avg"], request={})
    with pytest.raises(ValueError, match="2 row"):
        table.get_features(key, feature_names=["big"], request=[{"amount": 1.0}] * 2)
    failing = OnDemandFeature(
        "amount_vs_avg", ["amount", "avg_amount"], "double", lambda a, b: a / 0
    )
    broken = OnlineTable.open(table.name, sink=table.sink, on_demand=[failing])
    with pytest.raises(OnDemandFeatureError) as info:
        broken.get_features(key, feature_names=["amount_vs_avg"], request={"amount": 5.0})
    assert "'amount_vs_avg' raised ZeroDivisionError" in str(info.value)
    assert "{'amount': 5.0, 'avg_amount': 80.0}" in str(info.value)
    typed = OnDemandFeature("amount_vs_avg", ["amount", "avg_amount"], "double", lambda a, b: "x")
    wrong = OnlineTable.open(table.name, sink=table.sink, on_demand=[typed])
    with pytest.raises(OnDemandFeatureError, match="returned 'x' of type str, not double"):
        wrong.get_features(key, feature_names=["amount_vs_avg"], request={"amount": 5.0})


def test_spark_errors_name_the_feature_and_inputs(world: World, tmp_path: Path) -> None:
    failing = OnDemandFeature(
        "amount_vs_avg", ["amount", "avg_amount"], "double", lambda a, b: a / (b - b)
    )
    df = world.hist([failing]).to_dataframe(world.spine)
    with pytest.raises(Exception, match="'amount_vs_avg' raised ZeroDivisionError") as info:
        df.collect()
    assert "on input row {'amount':" in str(info.value)
    table = world.hist([AMOUNT_VS_AVG]).serve(
        "od_fail", sink=EmbeddedSink(tmp_path / "online"), as_of=AS_OF
    )
    with pytest.raises(OnDemandFeatureError, match="'amount_vs_avg' raised ZeroDivisionError"):
        check_values(table, world.hist([failing]), requests=world.spine)
    mistyped = OnDemandFeature("flag", ["amount"], "bigint", lambda amount: amount * 2)
    with pytest.raises(Exception, match=r"returned [0-9.]+ of type float, not bigint"):
        world.hist([mistyped]).to_dataframe(world.spine).collect()
    with pytest.raises(ConfigurationError, match="requests="):
        check_values(table, world.hist([AMOUNT_VS_AVG]))


def test_bad_declarations_fail_before_any_job(world: World) -> None:
    with pytest.raises(ConfigurationError, match="cycle: x -> y -> x"):
        order_on_demand(
            [
                OnDemandFeature("x", ["y"], "double", lambda y: y),
                OnDemandFeature("y", ["x"], "double", lambda x: x),
            ]
        )
    with pytest.raises(ConfigurationError, match="cycle"):
        world.hist(
            [
                OnDemandFeature("x", ["y"], "double", lambda y: y),
                OnDemandFeature("y", ["x"], "double", lambda x: x),
            ]
        )
    with pytest.raises(ConfigurationError, match="output_type 'float64'"):
        OnDemandFeature("x", ["a"], "float64", lambda a: a)
    with pytest.raises(ConfigurationError, match="cannot be called with its 2 input"):
        OnDemandFeature("x", ["a", "b"], "double", lambda a: a)
    with pytest.raises(ConfigurationError, match="mode 'rows'"):
        OnDemandFeature("x", ["a"], "double", lambda a: a, mode="rows")
    with pytest.raises(ConfigurationError, match="no inputs"):
        OnDemandFeature("x", [], "double", lambda: 1.0)
    unknown = OnDemandFeature("x", ["amount", "nope"], "double", lambda a, n: a)
    with pytest.raises(MissingColumnError, match="'x' needs input 'nope'"):
        world.hist([unknown]).to_dataframe(world.spine)
    clash = OnDemandFeature("amount", ["avg_amount"], "double", lambda a: a)
    with pytest.raises(ConfigurationError, match="'amount' has the name of a spine column"):
        world.hist([clash]).to_dataframe(world.spine)
    short = OnDemandFeature("x", ["amount"], "double", lambda a: a.head(1), mode="pandas")
    with pytest.raises(OnDemandFeatureError, match="returned 1 values for 2 rows"):
        compute([short], {"amount": [1.0, 2.0]}, 2)


def test_results_are_checked_never_cast() -> None:
    def one(dtype: str, value: Any) -> Any:
        feature = OnDemandFeature("f", ["x"], dtype, lambda x: value)
        return compute([feature], {"x": [0]}, 1)["f"][0]

    assert one("double", 3) == 3.0 and isinstance(one("double", 3), float)
    assert one("bigint", 2**40) == 2**40
    assert one("timestamp", datetime(2024, 1, 1)) == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert one("date", date(2024, 1, 1)) == date(2024, 1, 1)
    assert one("string", None) is None and one("bigint", pd.NA) is None
    for dtype, value in [
        ("double", True),
        ("double", "1"),
        ("bigint", 1.0),
        ("int", 2**31),
        ("boolean", 1),
        ("date", datetime(2024, 1, 1)),
        ("string", 1),
        ("bigint", float("nan")),
    ]:
        with pytest.raises(OnDemandFeatureError, match="'f' returned"):
            one(dtype, value)


_FLOATS = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64), st.integers(-5, 5)
)
_ROWS = st.lists(
    st.tuples(
        _FLOATS.map(lambda v: None if v is None else float(v)),
        st.one_of(st.none(), st.integers(-(2**62), 2**62)),
        st.one_of(st.none(), st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1))),
        st.one_of(st.none(), st.text(max_size=5)),
    ),
    min_size=1,
    max_size=40,
)
PROPERTY_FEATURES = [
    OnDemandFeature(
        "s",
        ["x", "n", "t", "txt"],
        "string",
        lambda x, n, t, txt: f"{x!r}|{n}|{t and t.isoformat()}|{txt}",
    ),
    OnDemandFeature(
        "p",
        ["x", "n"],
        "double",
        lambda x, n: x.fillna(-1.0) + n.astype("float64").fillna(0.0),
        mode="pandas",
    ),
    OnDemandFeature("k", ["n"], "bigint", lambda n: None if n is None else n // 3),
    OnDemandFeature("ts", ["t"], "timestamp", lambda t: None if t is None else t + timedelta(1)),
]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=_ROWS)
def test_spark_equals_serving_on_random_inputs(spark: SparkSession, rows: list[Any]) -> None:
    """The Spark path (Arrow batches of the joined rows) gives what serving computes from
    the same Python values (naive times as UTC), whatever the values."""
    indexed = [(i, *r) for i, r in enumerate(rows)]
    df = spark.createDataFrame(indexed, "i int, x double, n bigint, t timestamp, txt string")
    ordered = order_on_demand(PROPERTY_FEATURES)
    got = sorted(attach_on_demand(df, ordered, {"n": "bigint"}).collect(), key=lambda r: r.i)
    served = compute(
        ordered,
        {
            "x": [r[0] for r in rows],
            "n": [r[1] for r in rows],
            "t": [r[2] for r in rows],
            "txt": [r[3] for r in rows],
        },
        len(rows),
        {"n": "bigint"},
    )
    for i, row in enumerate(got):
        for feature in PROPERTY_FEATURES:
            value = row[feature.name]
            if feature.name == "ts" and value is not None:
                value = value.replace(tzinfo=timezone.utc)  # collect: naive, driver zone UTC
            assert same(value, served[feature.name][i]), (feature.name, rows[i], value)
