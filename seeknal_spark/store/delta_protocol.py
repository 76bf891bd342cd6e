"""The one Delta write protocol of the store, in SQL and the DataFrame API only.

Everything here runs on classic Spark and on Spark Connect (no ``DeltaTable`` Python API):
existence and table properties come from ``SHOW TBLPROPERTIES`` (``DESCRIBE DETAIL`` for a
metastore table), commits from ``DESCRIBE HISTORY``, table creation from
``DataFrame.writeTo(...).create()``.

A write (:func:`commit_write`), inside one retry loop:

1. reads the table's properties (:func:`table_properties`); when there is no table it
   *creates* it with the rows and the given table properties in version 0 — Delta writes
   a version's log file put-if-absent, so of two creators exactly one wins and the other retries
   (1b: over a folder that a failed creator left without a commit, with ``REPLACE``,
   which also commits version 0 put-if-absent);
2. when the table exists, hands its properties to the caller's check, which raises
   (a definition conflict) or names properties to change; those are set once the rows
   are committed (``ALTER TABLE ... SET TBLPROPERTIES``, a metadata commit), so a write
   that fails changes nothing;
3. writes the rows: ``overwrite`` replaces exactly the window (``replaceWhere``),
   ``append`` adds them; Delta's conflict exceptions restart the loop at step 1.

Every commit carries ``userMetadata`` JSON (version 0: a table property) with a unique
write id; :func:`commit_version` finds the commit holding it in ``DESCRIBE HISTORY`` and
raises when it is absent, never guessing "the latest version".
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from seeknal_spark.errors import NotFoundError, SeeknalError

__all__ = [
    "COMMIT_METADATA_KEY",
    "COMMIT_PROPERTY",
    "WRITE_TIME_COL",
    "DeltaTarget",
    "commit_version",
    "commit_write",
    "read_history",
    "retry_on_conflict",
    "table_properties",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Stamped on every row of a write (one value per write, increasing): among rows with equal
#: keys and event time, the latest Delta write wins.
WRITE_TIME_COL = "_seeknal_write_time"

#: Key of the seeknal record inside a Delta commit's ``userMetadata`` JSON.
COMMIT_METADATA_KEY = "seeknal"

#: Table property holding the creating commit's metadata (``writeTo().create()`` has no
#: ``userMetadata``); read back from that commit's ``operationParameters``.
COMMIT_PROPERTY = "seeknal.create_commit"

_CONFLICTS = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentWriteException",
    "ConcurrentTransactionException",
    "ProtocolChangedException",
    "MetadataChangedException",
    "DELTA_CONCURRENT",
    "DELTA_PROTOCOL_CHANGED",
    "DELTA_METADATA_CHANGED",
    "FileAlreadyExistsException",
    "TABLE_OR_VIEW_ALREADY_EXISTS",
    "DELTA_TABLE_ALREADY_EXISTS",
    "DELTA_PATH_EXISTS",
)
#: Commits searched first for a write id (then the whole history): a write reads its own
#: commit back right after it, so reading every commit file of a long history is rare.
_RECENT_COMMITS = 16

_MISSING = ("DELTA_MISSING_DELTA_TABLE", "PATH_NOT_FOUND", "TABLE_OR_VIEW_NOT_FOUND")


@dataclass(frozen=True)
class DeltaTarget:
    """A Delta table by path (``is_table=False``) or by metastore name."""

    location: str
    is_table: bool

    @property
    def sql(self) -> str:
        """The table as SQL text: the name, or ``delta.`path```."""
        if self.is_table:
            return self.location
        return "delta.`" + self.location.replace("`", "``") + "`"


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is Delta's answer to a concurrent commit (retry the whole write)."""
    if isinstance(exc, SeeknalError):
        return False
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in _CONFLICTS)


def retry_on_conflict(action: Callable[[], T], *, what: str, attempts: int = 8) -> T:
    """Run ``action`` (a read-check-commit), again from the start when Delta reports a conflict."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:  # Delta's conflict errors arrive as JVM exceptions
            if not is_conflict(exc) or attempt == attempts:
                raise
            delay = min(0.2 * 2**attempt, 5.0)
            logger.info("%s: concurrent Delta commit, retry %d in %.1fs", what, attempt, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def table_properties(spark: SparkSession, target: DeltaTarget) -> dict[str, str] | None:
    """The table's properties, or None when there is no Delta table.

    A path is read with ``SHOW TBLPROPERTIES``, which needs only the table's metadata:
    ``DESCRIBE DETAIL`` also counts its files, so it rebuilds the whole table state from
    the log (seconds on a table of many commits), which an append never needs. A metastore
    table is read with ``DESCRIBE DETAIL``, which also says whether it is a Delta table.
    """
    if target.is_table and not spark.catalog.tableExists(target.location):
        return None
    try:
        if not target.is_table:
            shown = spark.sql(f"SHOW TBLPROPERTIES {target.sql}").collect()  # a few rows
            return {str(row[0]): str(row[1]) for row in shown}
        row = spark.sql(f"DESCRIBE DETAIL {target.sql}").select("format", "properties").first()
    except Exception as exc:
        if any(marker in str(exc) for marker in _MISSING):
            return None
        raise
    if row is None or row["format"] != "delta":
        return None
    return dict(row["properties"] or {})


def read_history(spark: SparkSession, target: DeltaTarget, limit: int | None = None) -> DataFrame:
    """``DESCRIBE HISTORY`` of the table, newest first, with a ``seeknal`` metadata column.

    ``seeknal`` is the commit's metadata JSON: its ``userMetadata``, or for the creating
    commit the :data:`COMMIT_PROPERTY` table property it set.
    """
    text = f"DESCRIBE HISTORY {target.sql}" + ("" if limit is None else f" LIMIT {int(limit)}")
    history = spark.sql(text)
    created = F.get_json_object(
        F.col("operationParameters").getItem("properties"), f"$['{COMMIT_PROPERTY}']"
    )
    return history.withColumn("seeknal", F.coalesce(F.col("userMetadata"), created))


def commit_version(spark: SparkSession, target: DeltaTarget, write_id: str) -> int:
    """The Delta version of the commit whose metadata carries ``write_id``.

    Raises
    ------
    NotFoundError
        When no commit in the table's history carries it (it was vacuumed from the log, or
        the write did not commit): the version is never guessed.
    """
    marker = f'"write_id": "{write_id}"'
    rows: list[Any] = []
    for limit in (_RECENT_COMMITS, None):  # a write looks itself up just after committing
        rows = (
            read_history(spark, target, limit=limit)
            .where(F.col("seeknal").contains(marker))
            .select("version")
            .collect()  # at most one row: the id is unique
        )
        if rows:
            break
    if len(rows) != 1:
        raise NotFoundError(
            f"table {target.location!r}: {len(rows)} commits carry write id {write_id!r} in "
            "DESCRIBE HISTORY (expected exactly one); the commit version of this write is "
            "unknown, check the table's history before relying on it"
        )
    return int(rows[0]["version"])


def commit_write(
    spark: SparkSession,
    target: DeltaTarget,
    rows: DataFrame,
    *,
    mode: str,
    condition: str | None,
    metadata: Mapping[str, Any],
    properties: Mapping[str, str],
    check: Callable[[dict[str, str]], Mapping[str, str]],
    what: str,
    retry: Callable[[dict[str, str]], DataFrame] | None = None,
    counted: Observation | None = None,
) -> tuple[int, dict[str, str]]:
    """Commit ``rows`` by the protocol of the module docstring.

    Parameters
    ----------
    mode:
        ``"overwrite"`` (with ``condition``: replace exactly those rows) or ``"append"``.
    metadata:
        Recorded in the commit under :data:`COMMIT_METADATA_KEY` with a fresh ``write_id``.
    properties:
        Table properties the creating commit sets.
    check:
        Called with an existing table's properties inside the retry loop; raises to refuse
        the write, returns the properties to change first (``{}`` for none).
    retry:
        When given, rebuilds the rows to write from the table's properties on each attempt
        against an existing table (a merge re-reads the window it rewrites).
    counted:
        An observation (a ``rows`` count) over the rows: an append of no rows makes no
        commit in Delta, and then the table's latest version is the one returned.

    Returns
    -------
    tuple
        The exact Delta version committed and the table's properties after it.
    """
    write_id = uuid.uuid4().hex
    record = json.dumps({COMMIT_METADATA_KEY: {**metadata, "write_id": write_id}}, sort_keys=True)
    final: dict[str, str] = {}
    changes: dict[str, str] = {}

    def attempt() -> None:
        changes.clear()
        state = table_properties(spark, target)
        if state is None:
            creator = rows.writeTo(target.sql).using("delta")
            for key, value in {**properties, COMMIT_PROPERTY: record}.items():
                creator = creator.tableProperty(key, value)
            try:
                creator.create()
            except Exception as exc:
                if not _is_commitless_folder(spark, target, exc):
                    raise
                # step 1b: the folder holds no commit, so create() calls it taken; a REPLACE
                # still commits version 0 put-if-absent (a concurrent creator's commit
                # conflicts and restarts the loop)
                logger.info("%s: %s holds no commit; creating the table over it", what, target)
                creator.createOrReplace()
            final.update(properties)
            return
        changes.update(check(state))
        frame = rows if retry is None else retry(state)
        writer = frame.write.format("delta").option("userMetadata", record)
        if mode == "overwrite" and condition is not None:
            writer = writer.mode("overwrite").option("replaceWhere", condition)
        else:
            writer = writer.mode("append")
        if target.is_table:
            writer.saveAsTable(target.location)
        else:
            writer.save(target.location)
        final.update({**state, **changes})

    retry_on_conflict(attempt, what=what)
    if changes:
        # after the rows: a write that fails (null keys, a failing UDF) changes nothing
        pairs = ", ".join(f"{_sql_string(k)} = {_sql_string(v)}" for k, v in changes.items())
        retry_on_conflict(
            lambda: spark.sql(f"ALTER TABLE {target.sql} SET TBLPROPERTIES ({pairs})"),
            what=f"{what}: definition change",
        )
    try:
        return commit_version(spark, target, write_id), final
    except NotFoundError:
        if mode != "append" or counted is None or int(counted.get["rows"]) != 0:
            raise
    # Delta skips the commit of an empty append: nothing changed, so any version from the
    # latest on holds this write's (empty) effect
    latest = read_history(spark, target, limit=1).first()
    if latest is None:
        raise NotFoundError(f"table {target.location!r} has no commit")
    return int(latest["version"]), final


def _is_commitless_folder(spark: SparkSession, target: DeltaTarget, exc: Exception) -> bool:
    """Whether creating ``target`` failed only because its folder exists without a commit:
    what a creating write that failed (a transform raising in a task) leaves behind."""
    text = f"{type(exc).__name__}: {exc}"
    exists = "TABLE_OR_VIEW_ALREADY_EXISTS" in text or "DELTA_PATH_EXISTS" in text
    return exists and not target.is_table and table_properties(spark, target) is None


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
