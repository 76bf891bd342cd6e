"""Concurrent writers of one feature-group version: exactly once per window, always."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark import Entity, FeatureGroup, FeatureStore
from seeknal_spark.definitions.feature import FeatureGroupDefinition
from seeknal_spark.store.delta_protocol import table_properties
from seeknal_spark.store.feature_group import DEFINITION_PROPERTY

ROOT = Path(__file__).resolve().parents[2]
JAN = [datetime(2024, 1, d) for d in range(1, 8)]


def daily_spend(txns: DataFrame) -> DataFrame:
    return txns.groupBy("customer_id", F.to_date("ts").alias("day")).agg(
        F.sum("amount").alias("spend")
    )


def make_fg(spark: SparkSession, store: FeatureStore) -> FeatureGroup:
    txns = spark.createDataFrame(
        [("c1", datetime(2024, 1, 1, 9), 10.0), ("c2", datetime(2024, 1, 2, 9), 5.0)],
        "customer_id string, ts timestamp, amount double",
    )
    return FeatureGroup(
        "daily_spend",
        Entity("customer", ["customer_id"]),
        "day",
        daily_spend,
        inputs={"txns": txns},
        store=store,
    )


@pytest.mark.slow
def test_two_processes_with_different_transforms_into_a_new_version(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Issue 15 item 1 / issue 11: one lands, the other gets VersionConflictError."""
    store_path = str(tmp_path / "store")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("race_writer.py")),
                store_path,
                str(barrier),
                name,
                factor,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, factor in (("a", "1"), ("b", "2"))
    ]
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=900)
        assert child.returncode == 0, err[-3000:]
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    landed = [o for o in outcomes if o["landed"]]
    refused = [o for o in outcomes if not o["landed"]]
    assert len(landed) == 1 and len(refused) == 1, outcomes
    assert "spend" in refused[0]["error"] and "version=" in refused[0]["error"]
    store = FeatureStore(store_path, spark=spark)
    rows = store.read_table("spend", "v1")
    assert rows.count() == 2  # one writer's rows, once
    properties = table_properties(spark, store.target("spend", "v1"))
    assert properties is not None
    in_table = FeatureGroupDefinition.from_json(properties[DEFINITION_PROPERTY])
    registered = store.get_definition("spend", "v1")
    assert in_table.transform_hash == registered.transform_hash == landed[0]["hash"]
    assert [h["delta_version"] for h in store.history("spend", "v1")] == [
        landed[0]["delta_version"]
    ]


def test_two_writers_of_the_same_transform_into_a_new_version_do_not_double_rows(
    spark: SparkSession, store_path: str
) -> None:
    store = FeatureStore(store_path, spark=spark)
    fgs = [make_fg(spark, store), make_fg(spark, store)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda fg: fg.write(JAN[0], JAN[6], version="v7"), fgs))
    assert fgs[0].read(version="v7").count() == 2  # not 4: the last writer won the window
    assert len({r.delta_version for r in results}) == 2
    assert store.versions("daily_spend") == ["v7"]
