"""The time-zone matrix's dataset and flow: event times across the DST changes of
America/Los_Angeles (2024-03-10 and 2024-11-03) through every public path.

``run_flow(spark, root)`` writes three feature groups (event times as ``timestamp``,
``date`` and ``timestamp_ntz``, each with a ``timestamp`` feature), builds training data,
serves it to the embedded store, reads it back with ``get_features``, checks value parity
and computes drift. It returns plain JSON values, every time as microseconds since the
epoch (computed in Spark or from aware datetimes, never from the process's local zone), so
runs under different zones compare with ``==``.

Run as a script (``python -m tests.flow_tz ROOT``) it starts its own local Spark with Delta
and **no** pinned session zone (the JVM's default, i.e. the process's ``TZ``) and prints the
result as one JSON line: ``tests/test_time_zones.py`` compares a ``TZ=America/Los_Angeles``
run with a ``TZ=UTC`` one.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark import Entity, FeatureGroup, FeatureStore
from seeknal_spark._timestamps import utc_micros
from seeknal_spark.monitoring.drift import compute_drift
from seeknal_spark.monitoring.parity import check_values
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures

START = datetime(2024, 3, 1, tzinfo=timezone.utc)
END = datetime(2024, 12, 1, tzinfo=timezone.utc)
AS_OF = datetime(2024, 11, 4, tzinfo=timezone.utc)
KEY = Entity("key", ["k"])


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Microseconds since the epoch of a UTC wall time."""
    return utc_micros(datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc))


# Around the spring-forward gap (02:00-03:00 local on 2024-03-10 = 10:00Z) and the repeated
# hour of the fall-back (01:00-02:00 local twice on 2024-11-03 = 08:00Z-10:00Z).
TS_ROWS = [  # k, event time (instant), v
    ("A", utc(2024, 3, 10, 9, 30), 1.0),  # 01:30 PST
    ("A", utc(2024, 3, 10, 10, 30), 2.0),  # 03:30 PDT
    ("A", utc(2024, 11, 3, 8, 30), 3.0),  # 01:30 PDT (first pass of the hour)
    ("A", utc(2024, 11, 3, 9, 30), 4.0),  # 01:30 PST (second pass)
    ("B", utc(2024, 3, 10, 9, 59, 59), 10.0),
    ("B", utc(2024, 11, 3, 8, 59, 59), 11.0),
]
NTZ_ROWS = [  # k, wall time (read as UTC), v
    ("A", datetime(2024, 3, 10, 2, 30), 1.0),  # inside LA's spring-forward gap
    ("A", datetime(2024, 11, 3, 1, 30), 2.0),  # LA's repeated hour
    ("B", datetime(2024, 3, 10, 3, 0), 5.0),
]
DATE_ROWS = [  # k, date (midnight UTC), v
    ("A", date(2024, 3, 10), 1.0),
    ("A", date(2024, 11, 3), 2.0),
    ("B", date(2024, 3, 9), 7.0),
]
SPINE = [  # k, prediction time (instant), label
    ("A", utc(2024, 3, 10, 10, 0), 0),
    ("A", utc(2024, 11, 3, 9, 0), 1),
    ("A", utc(2024, 11, 3, 9, 30), 0),
    ("B", utc(2024, 3, 10, 10, 0), 1),
]
FEATURES = ["ts_v", "ts_seen", "ntz_v", "ntz_seen", "d_v", "d_seen"]
TIME_FEATURES = ["ts_seen", "ntz_seen", "d_seen"]


def identity(src: DataFrame) -> DataFrame:
    """The feature rows as given."""
    return src


def _frames(spark: SparkSession) -> dict[str, DataFrame]:
    """The three inputs, built without any session-zone conversion; ``seen`` is the event
    time as an instant (a timestamp feature)."""
    ts = spark.createDataFrame(TS_ROWS, "k string, us long, v double").select(
        "k", F.timestamp_micros("us").alias("event_time"), "v"
    )
    ntz = spark.createDataFrame(NTZ_ROWS, "k string, event_time timestamp_ntz, v double")
    day = spark.createDataFrame(DATE_ROWS, "k string, event_time date, v double")
    seen_ntz = F.make_timestamp(
        F.year("event_time"),
        F.month("event_time"),
        F.dayofmonth("event_time"),
        F.hour("event_time"),
        F.minute("event_time"),
        F.second("event_time"),
        F.lit("UTC"),
    )
    seen_date = F.timestamp_seconds(F.unix_date("event_time").cast("long") * 86_400)
    return {
        "ts": ts.withColumn("seen", F.col("event_time")),
        "ntz": ntz.withColumn("seen", seen_ntz),
        "d": day.withColumn("seen", seen_date),
    }


def _micros(value: Any) -> Any:
    """A served value as JSON: aware datetimes (the online store's timestamps) as micros."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise AssertionError(f"online timestamp {value!r} has no zone")
        return utc_micros(value)
    return value


def run_flow(spark: SparkSession, root: Path) -> dict[str, Any]:
    """Write, build training data, serve, read back, check parity and drift."""
    store = FeatureStore(str(root / "store"), spark=spark)
    lookups = []
    for prefix, frame in _frames(spark).items():
        group = FeatureGroup(
            f"zone_{prefix}", KEY, "event_time", identity, inputs={"src": frame}, store=store
        )
        group.write(START, END)
        lookups.append(FeatureLookup(group, features=["v", "seen"], prefix=f"{prefix}_"))
    hist = HistoricalFeatures(lookups, feature_start_time=START)
    spine = spark.createDataFrame(SPINE, "k string, us long, label int").select(
        "k", F.timestamp_micros("us").alias("prediction_time"), "label"
    )
    training = hist.to_dataframe(spine)
    as_micros = [F.unix_micros(F.col(c)).alias(c) for c in ["prediction_time", *TIME_FEATURES]]
    numbers = training.select(
        "k", *as_micros, *[c for c in FEATURES if c not in TIME_FEATURES], "label"
    )
    training_rows = sorted(
        [r.asDict() for r in numbers.collect()], key=lambda r: (r["k"], r["prediction_time"])
    )
    table = hist.serve("zones_online", sink=EmbeddedSink(str(root / "online")), as_of=AS_OF)
    served = table.get_features(keys=[{"k": "A"}, {"k": "B"}], feature_names=FEATURES)
    served_rows = [{n: _micros(row[n]) for n in FEATURES} for row in served]
    parity = check_values(table, hist)
    types = ", ".join(f"{n} {'long' if n in TIME_FEATURES else 'double'}" for n in FEATURES)
    current = spark.createDataFrame([[r[n] for n in FEATURES] for r in served_rows], types)
    drift = compute_drift(numbers.drop("k", "prediction_time", "label"), current)
    return {
        "session_zone": spark.conf.get("spark.sql.session.timeZone"),
        "training": training_rows,
        "served": served_rows,
        "parity": parity.to_dict(),
        "drift": drift.to_dict(),
    }


def _local_spark() -> SparkSession:
    """A small local session with Delta and no session zone set (the JVM's default)."""
    from seeknal_spark.session import configure_builder

    builder = (
        SparkSession.builder.master("local[1]")
        .appName("seeknal-tz-flow")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.databricks.delta.snapshotPartitions", "1")
        .config("spark.databricks.delta.delete.deletionVectors.persistent", "false")
    )
    return configure_builder(builder).getOrCreate()


if __name__ == "__main__":
    session = _local_spark()
    session.sparkContext.setLogLevel("ERROR")
    try:
        result = run_flow(session, Path(sys.argv[1]))
    finally:
        session.stop()
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
