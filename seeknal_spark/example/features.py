"""The example project's two feature groups: customer spend aggregates and customer profile.

Both are daily: a row's ``event_time`` is a midnight (UTC) and its features use only data
strictly before that instant, so a point-in-time join at time ``t`` never sees the future.

- ``customer_spend`` (Python transform): ``spend_7d``, ``spend_30d``, ``txn_count_30d``
  and ``avg_amount_30d`` over the trailing 7 and 30 days. A customer has a row on day
  ``d`` when they made a transaction in the 31 days before ``d``, so the first day after
  30 quiet days carries zeros rather than stale sums. To get the first days of a window
  right it reads 31 days of history before ``window_start``.
- ``customer_profile`` (SQL transform): ``segment``, ``region``, ``is_premium`` and
  ``tenure_days`` for every customer signed up by that day.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seeknal_spark._timestamps import to_utc_datetime
from seeknal_spark.definitions.entity import Entity

if TYPE_CHECKING:
    from seeknal_spark.store.feature_group import FeatureGroup, InputSource
    from seeknal_spark.store.feature_store import FeatureStore

__all__ = [
    "CUSTOMER",
    "CUSTOMER_PROFILE_FEATURES",
    "CUSTOMER_PROFILE_SQL",
    "CUSTOMER_SPEND_FEATURES",
    "customer_spend",
    "example_feature_groups",
]

_DAY = 86_400
_HISTORY_DAYS = 31

#: The entity of both example groups.
CUSTOMER = Entity("customer", ["customer_id"])

CUSTOMER_SPEND_FEATURES: dict[str, str] = {
    "spend_7d": "double",
    "spend_30d": "double",
    "txn_count_30d": "bigint",
    "avg_amount_30d": "double",
}

CUSTOMER_PROFILE_FEATURES: dict[str, str] = {
    "segment": "string",
    "region": "string",
    "is_premium": "boolean",
    "tenure_days": "int",
}


def customer_spend(
    transactions: DataFrame, window_start: datetime, window_end: datetime | None
) -> DataFrame:
    """Trailing spend aggregates per customer and day.

    Parameters
    ----------
    transactions:
        ``customer_id``, ``ts`` (timestamp), ``amount`` (double).
    window_start, window_end:
        The window being written (passed by :meth:`FeatureGroup.write`); rows are made
        for the midnights inside it, from transactions of the 31 days before each.

    Returns
    -------
    DataFrame
        ``customer_id``, ``event_time`` (timestamp, a UTC midnight), ``spend_7d``,
        ``spend_30d``, ``txn_count_30d`` (bigint), ``avg_amount_30d`` (0.0 when there
        was no transaction in 30 days). Sums are exact: amounts are added in cents.
    """
    window_start = to_utc_datetime(window_start)
    window_end = None if window_end is None else to_utc_datetime(window_end)
    first_day = math.ceil(window_start.timestamp() / _DAY)
    ts = F.col("ts")
    recent = transactions.where(ts >= F.lit(window_start - timedelta(days=_HISTORY_DAYS)))
    if window_end is not None:
        recent = recent.where(ts < F.lit(window_end))
    txn_day = F.floor(F.unix_seconds(ts) / _DAY)
    day = F.col("day")
    exploded = recent.select(
        "customer_id",
        F.unix_seconds(ts).alias("ts_s"),
        F.round(F.col("amount") * 100).cast("long").alias("cents"),
        F.explode(F.sequence(txn_day + 1, txn_day + _HISTORY_DAYS)).alias("day"),
    ).where(day >= first_day)
    if window_end is not None:
        last_day = math.ceil(window_end.timestamp() / _DAY) - 1
        exploded = exploded.where(day <= last_day)
    age = day * _DAY - F.col("ts_s")  # seconds between the transaction and the midnight
    in_7d = age <= 7 * _DAY
    in_30d = age <= 30 * _DAY
    cents_30d = F.sum(F.when(in_30d, F.col("cents")).otherwise(0))
    count_30d = F.sum(F.when(in_30d, 1).otherwise(0)).cast("long")
    aggregated = exploded.groupBy("customer_id", "day").agg(
        (F.sum(F.when(in_7d, F.col("cents")).otherwise(0)) / 100.0).alias("spend_7d"),
        (cents_30d / 100.0).alias("spend_30d"),
        count_30d.alias("txn_count_30d"),
        F.coalesce(F.try_divide(cents_30d / 100.0, count_30d), F.lit(0.0)).alias("avg_amount_30d"),
    )
    return aggregated.select(
        "customer_id",
        F.timestamp_seconds(day * _DAY).alias("event_time"),
        "spend_7d",
        "spend_30d",
        "txn_count_30d",
        "avg_amount_30d",
    )


#: SQL of ``customer_profile``: ``{customers}`` is the input, ``:window_start`` and
#: ``:window_end`` the window being written. Days are counted in UTC whatever the
#: session time zone (``unix_seconds`` / ``unix_date``).
CUSTOMER_PROFILE_SQL = """
SELECT c.customer_id,
       timestamp_seconds(d.day * 86400) AS event_time,
       c.segment,
       c.region,
       c.is_premium,
       CAST(d.day - unix_date(c.signup_date) AS INT) AS tenure_days
FROM {customers} AS c
CROSS JOIN (
    SELECT explode(sequence(
        CAST(ceil(unix_seconds(:window_start) / 86400) AS BIGINT),
        CAST(ceil(unix_seconds(:window_end) / 86400) AS BIGINT) - 1
    )) AS day
) AS d
WHERE unix_date(c.signup_date) <= d.day
""".strip()


def example_feature_groups(
    store: FeatureStore,
    inputs: str | os.PathLike[str] | Mapping[str, InputSource],
) -> dict[str, FeatureGroup]:
    """Build the example's ``customer_spend`` and ``customer_profile`` groups on ``store``.

    Parameters
    ----------
    store:
        Where the groups write.
    inputs:
        A folder written by :func:`seeknal_spark.example.data.write_example_data`, or a
        mapping with ``"transactions"`` and ``"customers"`` sources (DataFrames, paths,
        table names or functions of the session).

    Returns
    -------
    dict
        ``{"customer_spend": FeatureGroup, "customer_profile": FeatureGroup}``.
    """
    from seeknal_spark.store.feature_group import FeatureGroup

    if isinstance(inputs, (str, os.PathLike)):
        folder = os.fspath(inputs).rstrip("/")
        sources: Mapping[str, InputSource] = {
            "transactions": f"{folder}/transactions.parquet",
            "customers": f"{folder}/customers.parquet",
        }
    else:
        sources = inputs
    missing = sorted({"transactions", "customers"} - set(sources))
    if missing:
        raise ValueError(f"example_feature_groups needs inputs {missing}; got {sorted(sources)}")
    spend = FeatureGroup(
        "customer_spend",
        CUSTOMER,
        "event_time",
        customer_spend,
        features=CUSTOMER_SPEND_FEATURES,
        ttl=timedelta(days=30),
        inputs={"transactions": sources["transactions"]},
        store=store,
        description="Trailing 7/30-day spend and transaction counts per customer, daily.",
        owner="example",
        tags={"domain": "payments"},
    )
    profile = FeatureGroup(
        "customer_profile",
        CUSTOMER,
        "event_time",
        CUSTOMER_PROFILE_SQL,
        features=CUSTOMER_PROFILE_FEATURES,
        ttl=timedelta(days=7),
        inputs={"customers": sources["customers"]},
        store=store,
        description="Segment, region, premium flag and tenure per customer, daily.",
        owner="example",
        tags={"domain": "crm"},
    )
    return {spend.name: spend, profile.name: profile}
