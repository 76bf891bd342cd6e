"""Fixtures of the cluster and Connect lanes: the servers, Redis, and the reference answer."""

from __future__ import annotations

import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add it
    sys.path.insert(0, str(_ROOT))

from tests.lanes import flow  # noqa: E402
from tests.lanes.servers import Servers, start_cluster, start_connect  # noqa: E402
from tests.redis_server import redis_url  # noqa: E402

__all__ = ["redis_url"]


@pytest.fixture(scope="session")
def lane_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="seeknal-lanes-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def package_zip(lane_folder: Path) -> Path:
    """The package as a zip for ``spark.submit.pyFiles`` (what ``--py-files`` ships)."""
    target = lane_folder / "seeknal_spark.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted((_ROOT / "seeknal_spark").rglob("*.py")):
            archive.write(path, path.relative_to(_ROOT).as_posix())
    return target


@pytest.fixture(scope="session")
def cluster(lane_folder: Path) -> Iterator[Servers]:
    servers = start_cluster(lane_folder / "cluster")
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def connect_server(lane_folder: Path) -> Iterator[Servers]:
    servers = start_connect(lane_folder / "connect")
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def reference(spark: SparkSession, lane_folder: Path, redis_url: str) -> dict[str, Any]:
    """The flow's answer on the test session (``local[2]``, one JVM)."""
    return flow.run(spark, str(lane_folder / "reference"), redis_url)
