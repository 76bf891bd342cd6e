"""Shared fixtures: one local Spark session with Delta for the whole run.

At the repository root so that the docstring examples under ``seeknal_spark/`` (collected
with ``--doctest-modules``) run against the same session as the tests, with ``spark`` in
their namespace.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from seeknal_spark.session import configure_builder

os.environ.setdefault("TZ", "UTC")
os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", "python3"))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A session-scoped local[2] Spark with Delta, UTC, UI off, few shuffle partitions."""
    warehouse = tempfile.mkdtemp(prefix="seeknal-warehouse-")
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("seeknal-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.driver.memory", "2g")
        .config("spark.databricks.delta.snapshotPartitions", "1")
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        .config("spark.databricks.delta.delete.deletionVectors.persistent", "false")
    )
    session = configure_builder(builder).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    shutil.rmtree(warehouse, ignore_errors=True)


#: The session zones of the time-zone matrix: UTC, one with DST changes, one half-hour offset.
SESSION_ZONES = ["UTC", "America/Los_Angeles", "Asia/Kolkata"]


@pytest.fixture(params=SESSION_ZONES)
def session_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """The shared session's ``spark.sql.session.timeZone`` set to each zone for one test.

    Time-sensitive modules run under every zone with
    ``pytestmark = pytest.mark.usefixtures("session_zone")``; the zone is restored after the
    test (a test-only setting: the library never changes it).
    """
    session: SparkSession = request.getfixturevalue("spark")
    previous = session.conf.get("spark.sql.session.timeZone") or "UTC"
    session.conf.set("spark.sql.session.timeZone", request.param)
    try:
        yield str(request.param)
    finally:
        session.conf.set("spark.sql.session.timeZone", previous)


@pytest.fixture()
def store_path(tmp_path: Path) -> str:
    """A fresh folder for a FeatureStore root."""
    return str(tmp_path / "store")


@pytest.fixture(autouse=True)
def _doctest_spark(request: pytest.FixtureRequest) -> None:
    """Doctests get the session as ``spark`` (only they ask for ``doctest_namespace``)."""
    if isinstance(request.node, pytest.DoctestItem):
        namespace = request.getfixturevalue("doctest_namespace")
        namespace["spark"] = request.getfixturevalue("spark")
