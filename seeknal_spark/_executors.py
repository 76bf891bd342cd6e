"""A preflight for jobs whose Python code runs on the executors.

The point-in-time merge kernel and the online export writer are pickled to the executors,
which must import ``seeknal_spark`` (and pyarrow). When they cannot, the job would fail
deep inside a task with ``ModuleNotFoundError``; :func:`require_package_on_executors`
runs one tiny task first and raises :class:`~seeknal_spark.errors.ConfigurationError`
saying how to ship the package. It runs once per session, and not at all on a local
master (the executors are the driver's own Python there).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

import pyarrow as pa
from pyspark.sql import SparkSession

from seeknal_spark.errors import ConfigurationError

__all__ = ["executors_are_local", "require_package_on_executors"]

logger = logging.getLogger(__name__)

_checked: set[str] = set()
_lock = threading.Lock()

HOW_TO_SHIP = (
    "ship it with the job: `spark-submit --py-files seeknal_spark-<version>-py3-none-any.whl`"
    ", the `spark.submit.pyFiles` setting, `spark.addArtifacts(<wheel or zip>, pyfile=True)` "
    "on Spark Connect, or install the wheel on the cluster (a Databricks cluster library); "
    "the executors also need pyarrow"
)


def _is_connect(spark: SparkSession) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def executors_are_local(spark: SparkSession) -> bool:
    """Whether ``spark``'s executors surely run on this host: a classic session on a
    ``local`` master (a Spark Connect session's server may be anywhere)."""
    if _is_connect(spark):
        return False
    try:
        return str(spark.conf.get("spark.master", "")).startswith("local")
    except Exception:
        return False


def _session_key(spark: SparkSession) -> str | None:
    """An id of the session's application, or None on a local master (no check needed)."""
    try:
        master = spark.conf.get("spark.master", "")
    except Exception:  # Spark Connect may refuse to read it
        master = ""
    if master and master.startswith("local"):
        return None
    try:
        app = spark.conf.get("spark.app.id", "")
    except Exception:
        app = ""
    return f"{master}|{app}|{id(spark)}"


def require_package_on_executors(spark: SparkSession) -> None:
    """Raise ``ConfigurationError`` when the executors cannot import ``seeknal_spark``.

    One task of one row (``mapInArrow``) imports the package on an executor. Sessions on
    a local master are not checked; other sessions once each.
    """
    key = _session_key(spark)
    if key is None:
        return
    with _lock:
        if key in _checked:
            return

    def probe(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # nested, so it is pickled by value: unpickling needs no seeknal_spark
        for _ in batches:
            pass
        try:
            import seeknal_spark  # noqa: F401  (the import is the check)

            problem = ""
        except Exception as exc:  # reported on the driver with the fix
            problem = f"{type(exc).__name__}: {exc}"
        yield pa.RecordBatch.from_pydict({"problem": [problem]})

    try:
        rows = spark.range(1, numPartitions=1).mapInArrow(probe, "problem string").collect()
        problem = rows[0]["problem"] if rows else ""
    except Exception as exc:
        if "No module named" not in str(exc):
            raise
        problem = next(
            (line.strip() for line in str(exc).splitlines() if "No module named" in line),
            "ModuleNotFoundError",
        )
    if problem:
        raise ConfigurationError(
            f"the executors cannot import seeknal_spark ({problem}); {HOW_TO_SHIP}"
        )
    with _lock:
        _checked.add(key)
    logger.debug("executors import seeknal_spark (session %s)", key)
