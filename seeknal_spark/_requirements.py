"""The Spark seeknal-spark needs, checked when the package is imported.

The engine belongs to the platform: a Databricks runtime, a Spark Connect client
(``pyspark-client`` or ``databricks-connect``) or a cluster's own Spark. pyspark and
delta-spark are therefore not unconditional requirements of the package (pip would replace
the platform's own); the ``local`` extra brings the tested releases for local Spark.
Importing this module (``seeknal_spark/__init__.py`` does it first) runs :func:`check_spark`,
which turns a missing or unsupported pyspark into an ``ImportError`` that says what to
install; it reads ``pyspark.__version__`` and has no other effect (no session, no JVM).
"""

from __future__ import annotations

import re

__all__ = [
    "LOCAL_INSTALL",
    "SPARK_VERSION",
    "SUPPORTED_SPARK",
    "check_spark",
    "is_supported_spark",
]

#: The Spark release line seeknal-spark runs on (major, minor): Databricks Runtime 17.x.
SUPPORTED_SPARK = (4, 0)
#: The command that installs the tested local engine (pyspark and delta-spark 4.0.1).
LOCAL_INSTALL = "pip install 'seeknal-spark[local]'"

_SUPPORTED = f"Spark {SUPPORTED_SPARK[0]}.{SUPPORTED_SPARK[1]}.x"
_WHERE = (
    "On Databricks, Spark Connect (pyspark-client, databricks-connect) or a cluster with its "
    f"own Spark, use that platform's {_SUPPORTED}; for local Spark: {LOCAL_INSTALL}"
)


def is_supported_spark(version: str) -> bool:
    """Whether a pyspark version string (``4.0.1``, ``4.0.0.dev0``...) is a supported release."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return match is not None and (int(match[1]), int(match[2])) == SUPPORTED_SPARK


def check_spark() -> str:
    """Return the version of the importable pyspark, or raise ``ImportError`` naming the fix.

    Raises
    ------
    ImportError
        When no ``pyspark`` package is importable (neither pyspark nor a Spark Connect client
        is installed), or when its version is not Spark 4.0.x.
    """
    try:
        import pyspark
    except ModuleNotFoundError as exc:
        if exc.name != "pyspark":
            raise  # pyspark is there but broken: its own error says what is missing
        raise ImportError(
            f"seeknal-spark needs {_SUPPORTED} (the pyspark package), and none is installed. "
            + _WHERE
        ) from exc
    version = str(getattr(pyspark, "__version__", "unknown"))
    if not is_supported_spark(version):
        raise ImportError(
            f"seeknal-spark supports {_SUPPORTED}, but the pyspark imported from "
            f"{pyspark.__path__[0]} is {version}. " + _WHERE
        )
    return version


#: The version of the pyspark this process imports, checked once at import.
SPARK_VERSION = check_spark()
