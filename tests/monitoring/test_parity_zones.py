"""Value parity of timestamp features when the driver's Python runs outside UTC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seeknal_spark import Entity, FeatureGroup, FeatureStore
from seeknal_spark.monitoring.parity import check_values
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures
from tests.flow_tz import AS_OF, END, START, TS_ROWS, identity


@pytest.fixture()
def python_in_los_angeles(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The driver's Python local zone set to America/Los_Angeles (the JVM is unchanged)."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_timestamp_features_compare_as_instants_outside_utc(
    spark: SparkSession, tmp_path: Path, python_in_los_angeles: None
) -> None:
    # PySpark collects timestamps as naive local datetimes; in LA the repeated hour of
    # 2024-11-03 cannot even say which pass it was. check_values reads instants instead.
    assert datetime.fromtimestamp(0).hour == 16  # the local zone really is LA
    rows = spark.createDataFrame(TS_ROWS, "k string, us long, v double").select(
        "k", F.timestamp_micros("us").alias("event_time"), "v"
    )
    group = FeatureGroup(
        "seen_at",
        Entity("key", ["k"]),
        "event_time",
        identity,
        inputs={"src": rows.withColumn("seen", F.col("event_time"))},
        store=FeatureStore(str(tmp_path / "store"), spark=spark),
    )
    group.write(START, END)
    hist = HistoricalFeatures([FeatureLookup(group, features=["v", "seen"])], START)
    table = hist.serve("seen_online", sink=EmbeddedSink(str(tmp_path / "online")), as_of=AS_OF)
    served = table.get_features(keys=[{"k": "A"}], feature_names=["seen"])["seen"]
    assert served == datetime(2024, 11, 3, 9, 30, tzinfo=timezone.utc)  # the second 01:30
    report = check_values(table, hist)
    assert report.keys_checked == 2
    assert report.ok, report.to_dict()
