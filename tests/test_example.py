"""The example project: seeded data generator, the two feature groups, run_example."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.testing import assertDataFrameEqual

from seeknal_spark.app.config import load_config
from seeknal_spark.app.project import Project
from seeknal_spark.example import (
    churn_spine,
    customer_spend,
    customers,
    example_feature_groups,
    run_example,
    transactions,
)
from seeknal_spark.store.feature_store import FeatureStore

EXAMPLE = Path(__file__).resolve().parents[1] / "conf" / "example.yaml"


def _small_txns(spark: SparkSession, seed: int) -> DataFrame:
    return transactions(spark, n_customers=25, n_days=12, start="2024-01-01", seed=seed)


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


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_customer_spend_trailing_windows(spark: SparkSession) -> None:
    txns = spark.createDataFrame(
        [
            ("A", datetime(2023, 12, 20, 8), 100.0),
            ("A", datetime(2024, 1, 1, 10), 10.0),
            ("A", datetime(2024, 1, 5, 12), 5.5),  # after the window: not used
            ("B", datetime(2024, 1, 2), 1.25),
            ("C", datetime(2023, 12, 2, 12), 7.0),  # 31+ days before: no row
            ("D", datetime(2023, 12, 3, 6), 9.0),  # 30-31 days before: a row of zeros
        ],
        "customer_id string, ts timestamp, amount double",
    )
    out = customer_spend(txns, _utc(2024, 1, 3), _utc(2024, 1, 5))
    schema = (
        "customer_id string, event_time timestamp, spend_7d double, spend_30d double, "
        "txn_count_30d bigint, avg_amount_30d double"
    )
    expected = spark.createDataFrame(
        [
            ("A", datetime(2024, 1, 3), 10.0, 110.0, 2, 55.0),
            ("A", datetime(2024, 1, 4), 10.0, 110.0, 2, 55.0),
            ("B", datetime(2024, 1, 3), 1.25, 1.25, 1, 1.25),
            ("B", datetime(2024, 1, 4), 1.25, 1.25, 1, 1.25),
            ("D", datetime(2024, 1, 3), 0.0, 0.0, 0, 0.0),
        ],
        schema,
    )
    assertDataFrameEqual(out, expected)


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
    for name, group in built.items():
        from_yaml = project.feature_groups[name]
        assert group.features is not None and from_yaml.features is not None
        mine = dataclasses.replace(group.definition("v1", group.features), created_at=None)
        theirs = dataclasses.replace(
            from_yaml.definition("v1", from_yaml.features), created_at=None
        )
        assert mine == theirs, name


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
    assert groups["customer_profile"].read().count() == profile["rows_written"]
    assert first["rows"] == spend["rows_written"] + profile["rows_written"]

    again = run_example(workdir, spark=spark, n_customers=15, n_days=8, seed=1)
    assert again["rows"] == 0
    for name in ("customer_spend", "customer_profile"):
        assert again["feature_groups"][name]["windows_skipped"] == 1
        assert again["feature_groups"][name]["delta_version"] == 0
