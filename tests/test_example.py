"""The example project: seeded data generator, the two feature groups, run_example."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.testing import assertDataFrameEqual

from seeknal_spark.app.config import load_config
from seeknal_spark.app.project import Project
from seeknal_spark.example import (
    churn_spine,
    customers,
    example_feature_groups,
    run_example,
    transactions,
)
from seeknal_spark.example.churn import churn_features, churn_lookups
from seeknal_spark.example.features import CUSTOMER_SPEND_FEATURES, days_since_last_txn
from seeknal_spark.store.feature_store import FeatureStore
from seeknal_spark.training.historical import HistoricalFeatures

EXAMPLE = Path(__file__).resolve().parents[1] / "conf" / "example.yaml"


def _small_txns(spark: SparkSession, seed: int) -> DataFrame:
    return _small_txns_over(spark, n_days=12, seed=seed)


def _small_txns_over(spark: SparkSession, *, n_days: int, seed: int) -> DataFrame:
    return transactions(spark, n_customers=25, n_days=n_days, start="2024-01-01", seed=seed)


def _small_customers(spark: SparkSession, seed: int) -> DataFrame:
    return customers(spark, n_customers=25, n_days=12, start="2024-01-01", seed=seed)


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=timezone.utc)


def test_generator_is_deterministic_and_seeded(spark: SparkSession) -> None:
    first = _small_txns(spark, 7)
    assertDataFrameEqual(first, _small_txns(spark, 7).repartition(3))
    assert sorted(first.collect()) != sorted(_small_txns(spark, 8).collect())
    assertDataFrameEqual(_small_customers(spark, 7), _small_customers(spark, 7))

    rows = first.collect()
    assert rows, "the generator made no transaction"
    assert len({r.txn_id for r in rows}) == len(rows)
    assert all(
        _utc(2024, 1, 1) <= r.ts.replace(tzinfo=timezone.utc) < _utc(2024, 1, 13) for r in rows
    )
    assert all(r.amount >= 1.0 for r in rows)
    profile = _small_customers(spark, 7).collect()
    assert [r.customer_id for r in sorted(profile)][:2] == ["CUST00001", "CUST00002"]
    assert len(profile) == 25
    assert {r.segment for r in profile} <= {"mass", "affluent", "business"}
    assert {r.customer_id for r in rows} <= {r.customer_id for r in profile}


def test_generator_arguments_are_checked(spark: SparkSession) -> None:
    with pytest.raises(ValueError, match="n_customers"):
        customers(spark, n_customers=0)
    with pytest.raises(ValueError, match="start"):
        transactions(spark, start="January")
    with pytest.raises(ValueError, match="no prediction time fits"):
        churn_spine(spark, n_days=10, horizon_days=8, warmup_days=8)


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_churn_label_is_behaviour_after_prediction_time(spark: SparkSession) -> None:
    spine = churn_spine(spark, n_customers=40, n_days=24, seed=5).collect()
    txns = (
        transactions(spark, n_customers=40, n_days=24, seed=5).select("customer_id", "ts").collect()
    )
    times = sorted({r.prediction_time for r in spine})
    assert times == [datetime(2024, 1, 9), datetime(2024, 1, 13), datetime(2024, 1, 17)]
    horizon = warmup = timedelta(days=8)  # n_days // 3
    expected = []
    for pt in times:
        for cid in sorted({t.customer_id for t in txns}):
            mine = [t.ts for t in txns if t.customer_id == cid]
            if any(pt - warmup <= ts < pt for ts in mine):
                churned = int(not any(pt <= ts < pt + horizon for ts in mine))
                expected.append(Row(customer_id=cid, prediction_time=pt, churned=churned))
    assert sorted(spine) == sorted(expected)
    assert {r.churned for r in spine} == {0, 1}


#: The spine time of the boundary events of ``EDGE``.
EDGE_AT = datetime(2024, 2, 5)
EDGE = [  # events exactly at the spine time and exactly 7 and 30 days old: all out
    ("EDGE", EDGE_AT, 1.0),
    ("EDGE", EDGE_AT - timedelta(days=7), 2.0),
    ("EDGE", EDGE_AT - timedelta(days=7, seconds=-1), 4.0),
    ("EDGE", EDGE_AT - timedelta(days=30), 8.0),
    ("EDGE", EDGE_AT - timedelta(seconds=1), 16.0),
]


def spend_oracle(
    txns: list[tuple[str, datetime, float]], key: str, at: datetime
) -> dict[str, object]:
    """The example's spend features of ``key`` at ``at``, by brute force: the events with
    ``at - w < ts < at`` (not inclusive), the lookup's defaults for an empty window."""

    def inside(days: int) -> list[tuple[datetime, float]]:
        w = timedelta(days=days)
        return [(ts, amount) for k, ts, amount in txns if k == key and at - w < ts < at]

    last_30 = inside(30)
    amounts_30 = [amount for _, amount in last_30]
    return {
        "spend_7d": math.fsum(amount for _, amount in inside(7)),
        "spend_30d": math.fsum(amounts_30),
        "txn_count_30d": len(last_30),
        "avg_amount_30d": math.fsum(amounts_30) / len(amounts_30) if amounts_30 else 0.0,
        "last_txn_time": max((ts for ts, _ in last_30), default=None),
    }


def test_customer_spend_windows_equal_a_brute_force_oracle(
    spark: SparkSession, store_path: str
) -> None:
    generated = _small_txns_over(spark, n_days=40, seed=3).select("customer_id", "ts", "amount")
    rows = [(r.customer_id, r.ts, r.amount) for r in generated.collect()] + EDGE
    txns = spark.createDataFrame(rows, "customer_id string, ts timestamp, amount double")
    store = FeatureStore(store_path, spark=spark)
    groups = example_feature_groups(store, {"transactions": txns, "customers": txns})
    spend = groups["customer_spend"]
    assert spend.is_event_group
    written = spend.write(_utc(2024, 1, 1), _utc(2024, 2, 10))
    assert written.rows_written == len(rows)  # the events, as they are
    definition = store.get_definition("customer_spend", "v1")
    assert {f.name: f.dtype.simpleString() for f in definition.features} == (
        CUSTOMER_SPEND_FEATURES
    )

    customers_seen = [*sorted({r[0] for r in rows}), "NOBODY"]
    times = [datetime(2024, 1, 11), datetime(2024, 1, 21, 13, 30), EDGE_AT]
    spine_rows = [(c, t) for c in customers_seen for t in times]
    spine_rows += [("EDGE", EDGE_AT + timedelta(hours=1))]  # holds the event at EDGE_AT
    spine = spark.createDataFrame(spine_rows, "customer_id string, prediction_time timestamp")
    hist = churn_features(groups)  # its spend lookup alone (the profile is not written)
    spend_only = HistoricalFeatures(
        churn_lookups(groups)[:1], timestamp_col=hist.timestamp_col, inclusive=hist.inclusive
    )
    got = {
        (r.customer_id, r.prediction_time): r.asDict()
        for r in spend_only.to_dataframe(spine).collect()
    }
    assert len(got) == len(spine_rows)
    names = list(CUSTOMER_SPEND_FEATURES)
    for key, at in spine_rows:
        expected = spend_oracle(rows, key, at)
        actual = {n: got[(key, at)][n] for n in names}
        assert actual.pop("last_txn_time") == expected.pop("last_txn_time"), (key, at)
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-9), (key, at)
    edge = got[("EDGE", EDGE_AT)]
    assert (edge["spend_7d"], edge["txn_count_30d"]) == (20.0, 3)
    assert edge["last_txn_time"] == EDGE_AT - timedelta(seconds=1)
    nobody = got[("NOBODY", EDGE_AT)]
    assert [nobody[n] for n in names] == [0.0, 0.0, 0, 0.0, None]


def test_customer_profile_sql(spark: SparkSession, store_path: str) -> None:
    people = spark.createDataFrame(
        [
            ("X", date(2024, 1, 2), "mass", "north", False),
            ("Y", date(2023, 12, 31), "business", "east", True),
        ],
        "customer_id string, signup_date date, segment string, region string, is_premium boolean",
    )
    store = FeatureStore(store_path, spark=spark)
    profile = example_feature_groups(store, {"customers": people, "transactions": people})[
        "customer_profile"
    ]
    rows, features = profile.compute(_utc(2024, 1, 1), _utc(2024, 1, 3), spark=spark)
    assert [f.name for f in features] == ["segment", "region", "is_premium", "tenure_days"]
    expected = spark.createDataFrame(
        [
            ("X", datetime(2024, 1, 2), "mass", "north", False, 0),
            ("Y", datetime(2024, 1, 1), "business", "east", True, 1),
            ("Y", datetime(2024, 1, 2), "business", "east", True, 2),
        ],
        "customer_id string, event_time timestamp, segment string, region string, "
        "is_premium boolean, tenure_days int",
    )
    assertDataFrameEqual(rows, expected)


def test_yaml_and_python_definitions_agree(spark: SparkSession, store_path: str) -> None:
    project = Project.from_config(load_config(EXAMPLE), spark=spark)
    built = example_feature_groups(
        FeatureStore(store_path, spark=spark),
        {
            "customers": project.inputs["customers"],
            "transactions": project.inputs["transactions"],
        },
    )
    assert list(project.feature_groups) == list(built)
    start, end = _utc(2024, 1, 1), _utc(2024, 4, 1)
    for name, group in built.items():
        from_yaml = project.feature_groups[name]
        assert group.aggregations == from_yaml.aggregations, name
        # the features as a write records them (of an event group: its aggregations'
        # features, typed from the events' schema; no Spark job runs)
        _, features = group.compute(start, end, spark=spark)
        _, yaml_features = from_yaml.compute(start, end, spark=spark)
        mine = dataclasses.replace(group.definition("v1", features), created_at=None)
        theirs = dataclasses.replace(from_yaml.definition("v1", yaml_features), created_at=None)
        assert mine == theirs, name
    # the same lookups, defaults and settings for training, serving and parity
    hist, from_file = churn_features(built), project.historical()
    assert (from_file.timestamp_col, from_file.inclusive) == (hist.timestamp_col, False)
    assert [(lk.name, lk.features, lk.version, lk.defaults) for lk in project.lookups()] == [
        (lk.name, lk.features, lk.version, lk.defaults) for lk in churn_lookups(built)
    ]
    # the same request-time feature: the same function object, so the same identity
    assert [f.describe() for f in from_file.on_demand] == [f.describe() for f in hist.on_demand]
    assert [f.fn for f in from_file.on_demand] == [days_since_last_txn]


def test_run_example_end_to_end_and_rerun(spark: SparkSession, tmp_path: Path) -> None:
    workdir = tmp_path / "example"
    first = run_example(workdir, spark=spark, n_customers=15, n_days=8, seed=1)
    spend, profile = (
        first["feature_groups"]["customer_spend"],
        first["feature_groups"]["customer_profile"],
    )
    assert spend["windows_written"] == 1 and profile["windows_written"] == 1
    assert spend["rows_written"] > 0 and profile["rows_written"] > 0
    store = FeatureStore(str(workdir / "store"), spark=spark)
    groups = example_feature_groups(store, str(workdir / "data"))
    assert groups["customer_spend"].read().count() == spend["rows_written"]
    # an event group stores the transactions
    assert spark.read.parquet(first["data"]["transactions"]).count() == spend["rows_written"]
    assert groups["customer_profile"].read().count() == profile["rows_written"]
    assert first["rows"] == spend["rows_written"] + profile["rows_written"]

    again = run_example(workdir, spark=spark, n_customers=15, n_days=8, seed=1)
    assert again["rows"] == 0
    for name in ("customer_spend", "customer_profile"):
        assert again["feature_groups"][name]["windows_skipped"] == 1
        assert again["feature_groups"][name]["delta_version"] == 0
