"""Event times become UTC instants whatever the session time zone."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seeknal_spark._timestamps import utc_instant


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_dates_and_wall_times_are_read_as_utc(spark: SparkSession, zone: str) -> None:
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)  # test-only: the library never does
    try:
        frame = spark.createDataFrame(
            [(date(2024, 3, 10), datetime(2024, 3, 10, 2, 30))],
            "d date, w timestamp_ntz",
        )
        row = frame.select(
            F.unix_micros(utc_instant(F.col("d"), frame.schema["d"].dataType)).alias("d"),
            F.unix_micros(utc_instant(F.col("w"), frame.schema["w"].dataType)).alias("w"),
        ).first()
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    assert row is not None
    midnight = datetime(2024, 3, 10, tzinfo=timezone.utc)
    wall = datetime(2024, 3, 10, 2, 30, tzinfo=timezone.utc)
    assert row["d"] == int(midnight.timestamp()) * 1_000_000
    assert row["w"] == int(wall.timestamp()) * 1_000_000
