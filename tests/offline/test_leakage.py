"""Leakage: what the library guarantees, and how a look-ahead feature group is caught.

Guarantees tested here:

1. A feature row whose event time is after a spine row's prediction time is never joined
   to it (``event_time <= prediction_time``; ``<`` with ``inclusive=False``), whatever
   its value: a value "computed with future data" and stamped in the future is invisible.
2. The labels (and any other spine column) play no part in the join: a spine whose labels
   depend on the future, or are permuted, gets exactly the same features.

What the library cannot see: the *inside* of a transform. A group that stamps at time
``t`` a value aggregated from data after ``t`` (its event time is earlier than the data it
aggregates) passes every check above. It is detectable with a truncation test, shown in
:func:`future_dependent_rows`: compute the group from inputs cut at ``cutoff`` and from
the full inputs; an honest group gives identical rows for event times before ``cutoff``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark.definitions.entity import Entity
from seeknal_spark.example.data import transactions
from seeknal_spark.example.features import CUSTOMER
from seeknal_spark.store.feature_group import FeatureGroup
from seeknal_spark.store.feature_store import FeatureStore
from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
KEYS = [f"c{i}" for i in range(4)]
DAYS = 20


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def passthrough(events: DataFrame) -> DataFrame:
    """The feature group's transform: the rows as given."""
    return events


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc).replace(tzinfo=None)


@pytest.fixture(scope="module")
def events_group(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> FeatureGroup:
    """Rows every second day per key; ``value`` encodes (key, day), ``seen_at`` = event time."""
    rows = [
        (key, day(d), float(i * 1000 + d), day(d))
        for i, key in enumerate(KEYS)
        for d in range(i % 2, DAYS, 2)
    ]
    events = spark.createDataFrame(
        rows, "customer_id string, event_time timestamp, value double, seen_at timestamp"
    )
    store = FeatureStore(str(tmp_path_factory.mktemp("leakage") / "store"), spark=spark)
    group = FeatureGroup(
        "events",
        Entity("customer", ["customer_id"]),
        "event_time",
        passthrough,
        features={"value": "double", "seen_at": "timestamp"},
        inputs={"events": events},
        store=store,
    )
    group.write(day(0), day(DAYS))
    return group


def _spine(spark: SparkSession) -> DataFrame:
    times = [-1.0, 0.0, 3.5, 6.0, 7.0, 10.25, 19.9, 25.0]
    rows = [(key, day(t)) for key in KEYS for t in times]
    return spark.createDataFrame(rows, "customer_id string, prediction_time timestamp")


def _expected(key: str, t: datetime, inclusive: bool = True) -> float | None:
    i = KEYS.index(key)
    usable = [d for d in range(i % 2, DAYS, 2) if (day(d) <= t if inclusive else day(d) < t)]
    return float(i * 1000 + max(usable)) if usable else None


def test_feature_rows_after_the_prediction_time_are_never_joined(
    spark: SparkSession, events_group: FeatureGroup
) -> None:
    spine = _spine(spark)
    for inclusive in (True, False):
        hist = HistoricalFeatures([FeatureLookup(events_group)], inclusive=inclusive)
        rows = hist.to_dataframe(spine).collect()
        assert len(rows) == spine.count()
        for row in rows:
            t = row.prediction_time.replace(tzinfo=timezone.utc)
            assert row.value == _expected(row.customer_id, t, inclusive), (row, inclusive)
            if row.seen_at is not None:  # the joined row was known at prediction time
                seen = row.seen_at.replace(tzinfo=timezone.utc)
                assert seen <= t if inclusive else seen < t
    # the future row exists (day 8 for c0) but a prediction on day 7 sees day 6
    table = events_group.read().where("customer_id = 'c0'")
    assert table.where(F.col("event_time") == _naive(day(8))).count() == 1
    hist = HistoricalFeatures([FeatureLookup(events_group)])
    seven = hist.to_dataframe(spine.where("customer_id = 'c0'")).where(
        F.col("prediction_time") == _naive(day(7))
    )
    assert [r.value for r in seven.collect()] == [6.0]


def test_labels_that_depend_on_the_future_do_not_change_the_features(
    spark: SparkSession, events_group: FeatureGroup
) -> None:
    spine = _spine(spark)
    keyed = spine.collect()
    # a leaky label: whether the value three days later is known (information from the future)
    leaky = [
        (
            r.customer_id,
            r.prediction_time,
            int(
                _expected(
                    r.customer_id,
                    r.prediction_time.replace(tzinfo=timezone.utc) + timedelta(days=3),
                )
                is not None
            ),
            _expected(
                r.customer_id, r.prediction_time.replace(tzinfo=timezone.utc) + timedelta(days=3)
            ),
        )
        for r in keyed
    ]
    permuted = [(k, t, 1 - label, None) for (k, t, label, _) in reversed(leaky)]
    schema = "customer_id string, prediction_time timestamp, churned int, future_value double"
    hist = HistoricalFeatures([FeatureLookup(events_group)])

    def features(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        joined = hist.to_dataframe(spark.createDataFrame(rows, schema))
        return sorted(
            (r.customer_id, r.prediction_time, r.value, r.seen_at)
            for r in joined.select("customer_id", "prediction_time", "value", "seen_at").collect()
        )

    baseline = features([(k, t, 0, None) for (k, t, _, _) in leaky])
    assert features(leaky) == baseline
    assert features(permuted) == baseline


def honest_spend(transactions: DataFrame) -> DataFrame:
    """Stamped at midnight ``d``, it sums the 7 days *before* ``d``: data before ``d`` only."""
    txn_day = F.floor(F.unix_seconds(F.col("ts")) / 86400)
    return (
        transactions.select(
            "customer_id", "amount", F.explode(F.sequence(txn_day + 1, txn_day + 7)).alias("day")
        )
        .groupBy("customer_id", "day")
        .agg(F.round(F.sum("amount"), 2).alias("spend_last_7d"))
        .select(
            "customer_id",
            F.timestamp_seconds(F.col("day") * 86400).alias("event_time"),
            "spend_last_7d",
        )
    )


def leaky_spend(transactions: DataFrame) -> DataFrame:
    """A look-ahead bug: stamped at midnight ``d``, it sums the 7 days *starting* at ``d``."""
    txn_day = F.floor(F.unix_seconds(F.col("ts")) / 86400)
    return (
        transactions.select(
            "customer_id", "amount", F.explode(F.sequence(txn_day - 6, txn_day)).alias("day")
        )
        .groupBy("customer_id", "day")
        .agg(F.round(F.sum("amount"), 2).alias("spend_next_7d"))
        .select(
            "customer_id",
            F.timestamp_seconds(F.col("day") * 86400).alias("event_time"),
            "spend_next_7d",
        )
    )


def future_dependent_rows(
    transform: Any, txns: DataFrame, start: datetime, cutoff: datetime
) -> DataFrame:
    """Rows of ``[start, cutoff)`` that change when the input stops at ``cutoff``.

    An honest group (every row at ``t`` computed from data before ``t``) gives none.
    """

    def rows(source: DataFrame) -> DataFrame:
        group = FeatureGroup(
            "leak_probe", CUSTOMER, "event_time", transform, inputs={"transactions": source}
        )
        computed, _ = group.compute(start, cutoff, spark=source.sparkSession)
        return computed

    truncated = txns.where(F.col("ts") < F.lit(cutoff))
    full, cut = rows(txns), rows(truncated)
    return full.exceptAll(cut).unionByName(cut.exceptAll(full))


def test_a_look_ahead_feature_group_is_caught_by_a_truncation_test(spark: SparkSession) -> None:
    txns = transactions(spark, n_customers=12, n_days=24, start="2024-01-01", seed=3).cache()
    try:
        start, cutoff = day(8), day(16)
        honest = future_dependent_rows(honest_spend, txns, start, cutoff)
        assert honest.count() == 0
        leaky = future_dependent_rows(leaky_spend, txns, start, cutoff)
        changed = leaky.select("event_time").distinct().collect()
        assert changed, "the look-ahead group was not caught"
        # only rows within 7 days of the cutoff can see past it
        assert all(day(9) <= r.event_time.replace(tzinfo=timezone.utc) < cutoff for r in changed)
    finally:
        txns.unpersist()
