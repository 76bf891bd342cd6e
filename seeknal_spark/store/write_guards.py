"""Guards and helpers of a window write: no silent emptying of a window, no null key or
event time stored, the rows of a merged window, the name of the next version.

Functions of plain arguments, used by
:meth:`~seeknal_spark.store.feature_group.FeatureGroup.write`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seeknal_spark.errors import EmptyWindowError
from seeknal_spark.store.compute import NULL_MARKER, transform_failure
from seeknal_spark.store.feature_store import FeatureStore

__all__ = ["merge_window", "next_version", "refuse_emptying", "reject_nulls"]


def refuse_emptying(
    store: FeatureStore, group: str, version: str, rows: DataFrame, condition: str, window: str
) -> None:
    """Raise :class:`EmptyWindowError` when ``rows`` is empty but the window is not.

    The stored window is checked first: Delta answers it from file statistics (the table
    state the write reads anyway), so a write of a new window never reads its input twice.
    """
    if not store.table_exists(group, version):
        return
    if store.read_table(group, version).where(condition).isEmpty():
        return
    try:
        empty = rows.isEmpty()
    except Exception as exc:
        failure = transform_failure(group, exc)
        if failure is not None:
            raise failure from exc
        raise
    if not empty:
        return
    raise EmptyWindowError(
        f"feature group {group!r} version {version!r}: the transform returned no rows "
        f"for window {window}, which holds rows; an empty upstream would wipe it. "
        "Check the inputs, or pass allow_empty=True (on the command line: --allow-empty) "
        "to write the empty window. Nothing was written."
    )


def reject_nulls(rows: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Fail the write job (so Delta commits nothing) on a null in ``columns`` (the join
    keys and event time), which come first in the result."""
    guarded = []
    for column in columns:
        message = f"{NULL_MARKER}: column {column!r} holds null values"
        guarded.append(
            F.when(F.col(column).isNull(), F.raise_error(F.lit(message)))
            .otherwise(F.col(column))
            .alias(column)
        )
    others = [F.col(c) for c in rows.columns if c not in set(columns)]
    return rows.select(*guarded, *others)


def merge_window(
    existing: DataFrame, incoming: DataFrame, counted: DataFrame, on: list[str], condition: str
) -> DataFrame:
    """The window's rows after upserting ``incoming`` on ``on`` (join keys, event time);
    ``counted`` is ``incoming`` under its row-count observation (used once in the plan)."""
    kept = existing.where(F.expr(condition)).join(incoming.select(*on).distinct(), on, "left_anti")
    return kept.unionByName(counted)


def next_version(version: str) -> str:
    """The version to suggest after ``version``: ``v1`` -> ``v2``, ``prod`` -> ``prod_2``."""
    match = re.fullmatch(r"(.*?)(\d+)", version)
    return f"{match.group(1)}{int(match.group(2)) + 1}" if match else f"{version}_2"
