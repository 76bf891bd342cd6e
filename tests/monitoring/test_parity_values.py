"""Value parity on the example: zero mismatches, a tampered online value caught, another
version refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seeknal_spark.errors import ParityError
from seeknal_spark.example.churn import churn_lookups
from seeknal_spark.example.data import write_example_data
from seeknal_spark.example.features import example_feature_groups
from seeknal_spark.monitoring.parity import check_values, validate_parity
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.export import Snapshot, export_snapshots
from seeknal_spark.online.table import OnlineTable
from seeknal_spark.store.feature_group import FeatureGroup
from seeknal_spark.store.feature_store import FeatureStore
from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures
from seeknal_spark.training.schema import FeatureSchema

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAYS = 20
END = START + timedelta(days=DAYS)


class Example:
    def __init__(self, root: Path, spark: SparkSession) -> None:
        write_example_data(spark, str(root / "data"), n_customers=30, n_days=DAYS, seed=11)
        self.store = FeatureStore(str(root / "store"), spark=spark)
        self.groups: dict[str, FeatureGroup] = example_feature_groups(
            self.store, str(root / "data")
        )
        for group in self.groups.values():
            group.write(START, END)
        self.sink = EmbeddedSink(str(root / "online"))
        self.hist = HistoricalFeatures(churn_lookups(self.groups))
        self.schema: FeatureSchema = self.hist.feature_schema()
        self.table = self.hist.serve("parity_ok", sink=self.sink, as_of=END)


@pytest.fixture(scope="module")
def example(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Example:
    return Example(tmp_path_factory.mktemp("parity_values"), spark)


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_served_values_equal_the_point_in_time_join(example: Example) -> None:
    validate_parity(example.schema, example.table)
    report = check_values(example.table, example.hist)
    spend_keys = example.store.read_table("customer_spend", "v1").select("customer_id")
    expected_keys = spend_keys.distinct().count() + 30  # every customer has a profile
    assert report.ok and report.total_mismatches == 0
    assert report.keys_checked == expected_keys
    assert sorted(report.features) == sorted(example.schema.feature_names)
    report.raise_for_mismatches()
    sampled = check_values(example.table, example.hist, sample=4)
    assert sampled.ok and sampled.keys_checked == 8  # 4 keys per lookup


def _tampered_snapshots(example: Example, victim: str) -> list[Snapshot]:
    """The clean export's snapshots, with ``spend_30d`` of one customer changed."""
    meta = {lk["feature_group"]: lk for lk in example.table.metadata["lookups"]}
    outputs = example.hist.output_features()
    snapshots = []
    for lookup, clean in example.hist.snapshot(END):
        name = lookup.feature_group.name
        frame = clean
        if name == "customer_spend":
            bumped = F.col("spend_30d") + F.lit(0.01)
            frame = clean.withColumn(
                "spend_30d",
                F.when(F.col("customer_id") == victim, bumped).otherwise(F.col("spend_30d")),
            )
        snapshots.append(
            Snapshot(
                feature_group=name,
                version=str(lookup.version),
                key_columns=tuple(lookup.feature_group.entity.join_keys),
                dataframe=frame,
                features=tuple(n for n, _, lk in outputs if lk == lookup),
                ttl=lookup.effective_ttl(),
                delta_version=meta[name]["delta_version"],
                transform_hash=meta[name]["transform_hash"],
                defaults=lookup.defaults,
            )
        )
    return snapshots


def test_a_corrupted_online_value_is_detected(example: Example) -> None:
    victim = sorted(
        r.customer_id
        for r in example.store.read_table("customer_spend", "v1")
        .select("customer_id")
        .distinct()
        .collect()
    )[0]
    tampered = export_snapshots(
        _tampered_snapshots(example, victim),
        name="parity_tampered",
        sink=example.sink,
        as_of=END,
    )
    # names, types, versions and hashes all agree: only the values tell
    validate_parity(example.schema, tampered)
    report = check_values(tampered, example.hist)
    assert not report.ok
    assert report.mismatches["spend_30d"] == 1
    assert report.total_mismatches == 1
    [(key, offline, online)] = report.examples["spend_30d"]
    assert key == {"customer_id": victim}
    assert online == pytest.approx(offline + 0.01)
    with pytest.raises(ParityError) as raised:
        report.raise_for_mismatches()
    message = str(raised.value)
    assert "'spend_30d'" in message and victim in message and "1 of" in message
    assert len(raised.value.problems) == 1


def test_an_online_table_from_another_version_is_refused(example: Example) -> None:
    spend = example.groups["customer_spend"]
    spend.write(START, END, version="v2")
    lookups: list[Any] = [
        FeatureLookup(
            spend,
            features=churn_lookups(example.groups)[0].features,
            version="v2",
            default=churn_lookups(example.groups)[0].default,
        ),
        churn_lookups(example.groups)[1],
    ]
    other = HistoricalFeatures(lookups).serve("parity_v2", sink=example.sink, as_of=END)
    with pytest.raises(ParityError) as raised:
        validate_parity(example.schema, other)
    problems = raised.value.problems
    assert len(problems) == 1
    assert "version mismatch for feature group 'customer_spend'" in problems[0]
    assert "'v1'" in problems[0] and "'v2'" in problems[0]
    # the values check refuses too: the table does not serve what the model read
    with pytest.raises(ParityError, match="does not serve feature group 'customer_spend'"):
        check_values(other, example.hist)
    # reopening the clean table elsewhere still passes
    validate_parity(example.schema, OnlineTable.open("parity_ok", sink=example.sink))
