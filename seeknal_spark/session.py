"""Getting a SparkSession with Delta Lake, without touching one the caller already owns.

``get_spark()`` returns the active session unchanged when there is one (Databricks,
spark-submit, a notebook); otherwise it builds a local session with Delta enabled. The
Delta jars come from Maven Central through Spark's package resolution (as Delta's
``configure_spark_with_delta_pip`` does), or from a local folder of jars for air-gapped
machines (``jars_dir=`` or the ``SEEKNAL_DELTA_JARS`` environment variable).
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

from seeknal_spark.errors import ConfigurationError

__all__ = ["configure_builder", "get_spark"]

logger = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# Defaults for a *new local* session only; an existing session is never changed.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.databricks.delta.snapshotPartitions": "2",
}


def configure_builder(
    builder: SparkSession.Builder,
    *,
    jars_dir: str | None = None,
) -> SparkSession.Builder:
    """Add Delta Lake to a builder the caller owns and return it.

    Parameters
    ----------
    builder:
        A ``SparkSession.builder`` the caller configured (master, app name, memory...).
    jars_dir:
        A folder holding ``delta-spark_2.13-*.jar`` and ``delta-storage-*.jar`` (and their
        dependency ``antlr4-runtime``). When given, those jars are used and nothing is
        downloaded; otherwise Spark resolves ``io.delta:delta-spark_2.13`` from Maven Central
        (or from ``~/.m2``/``~/.ivy2`` when it is already there).

    Returns
    -------
    SparkSession.Builder
        The same builder, with the Delta SQL extension and catalog set.
    """
    builder = builder.config("spark.sql.extensions", DELTA_EXTENSION).config(
        "spark.sql.catalog.spark_catalog", DELTA_CATALOG
    )
    jars_dir = jars_dir or os.environ.get("SEEKNAL_DELTA_JARS")
    if jars_dir:
        jars = sorted(glob.glob(os.path.join(jars_dir, "*.jar")))
        if not any("delta-spark" in os.path.basename(j) for j in jars):
            raise ConfigurationError(
                f"no delta-spark jar in {jars_dir!r}: put delta-spark_2.13-<version>.jar, "
                "delta-storage-<version>.jar and antlr4-runtime there, or unset "
                "SEEKNAL_DELTA_JARS to resolve them from Maven Central"
            )
        return builder.config("spark.jars", ",".join(jars))
    try:  # delta-spark (the local extra): imported lazily, only a local session needs it here
        from delta import configure_spark_with_delta_pip
    except ModuleNotFoundError as exc:
        if exc.name != "delta":
            raise
        raise ConfigurationError(
            "a local Spark session with Delta needs the delta-spark package: "
            "pip install 'seeknal-spark[local]' (or set SEEKNAL_DELTA_JARS to a folder of "
            "Delta jars); on Databricks or a cluster, use the platform's session instead"
        ) from exc

    return configure_spark_with_delta_pip(builder)


def get_spark(
    app_name: str = "seeknal-spark",
    *,
    master: str = "local[*]",
    conf: Mapping[str, str] | None = None,
    jars_dir: str | None = None,
    remote: str | None = None,
) -> SparkSession:
    """Return the active SparkSession, or build a local one with Delta enabled.

    An active session (Databricks, a notebook, a test fixture) is returned exactly as it
    is: no setting is read or changed. Under ``spark-submit`` the session is built from the
    command line's settings alone. Only a local session built here gets
    ``master``, ``conf`` and the local defaults (UTC time zone, UI off, few shuffle
    partitions); its executors run the driver's Python (``PYSPARK_PYTHON`` is set to
    this interpreter unless it is already set), so they import what the driver imports.
    With ``remote=`` (or the ``SPARK_REMOTE`` environment variable, as pyspark reads it)
    a Spark Connect session to that server is returned (``sc://host:port``); its server
    owns every setting.

    Parameters
    ----------
    app_name:
        Application name of a new session.
    master:
        Spark master of a new session.
    conf:
        Extra settings for a new session; they override the local defaults.
    jars_dir:
        Offline folder of Delta jars (see :func:`configure_builder`).
    remote:
        A Spark Connect URL; defaults to ``SPARK_REMOTE`` when that is set.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    remote = remote or os.environ.get("SPARK_REMOTE") or None
    if remote:
        logger.info("connecting to the Spark Connect server %s", remote)
        return SparkSession.builder.remote(remote).getOrCreate()
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # launched by spark-submit (or pyspark): master, packages and confs come from its
        # command line and spark-defaults; the session is built from them untouched
        logger.info("starting the Spark session configured by spark-submit")
        spark = SparkSession.builder.appName(app_name).getOrCreate()
        if DELTA_EXTENSION not in (spark.conf.get("spark.sql.extensions", "") or ""):
            raise ConfigurationError(
                "the spark-submit session has no Delta Lake: add --packages "
                "io.delta:delta-spark_2.13:4.0.1 --conf spark.sql.extensions="
                f"{DELTA_EXTENSION} --conf spark.sql.catalog.spark_catalog={DELTA_CATALOG}"
            )
        return spark
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(master)
    for key, value in {**LOCAL_DEFAULTS, **dict(conf or {})}.items():
        builder = builder.config(key, value)
    logger.info("starting a local Spark session %r on %s with Delta", app_name, master)
    return configure_builder(builder, jars_dir=jars_dir).getOrCreate()
