"""The example project's two feature groups: customer spend windows and customer profile.

- ``customer_spend`` is an *event group* over the raw transactions (event time ``ts``):
  its Delta table stores the transactions as they are (``customer_id``, ``ts``,
  ``amount``) and its features are the time-window aggregations of
  :data:`CUSTOMER_SPEND_AGGREGATIONS`, computed exactly at each prediction time ``t`` from
  the transactions with ``t - w < ts < t`` (the churn training set is not inclusive, see
  :func:`seeknal_spark.example.churn.churn_features`): ``spend_7d``, ``spend_30d``
  (sums of ``amount``), ``txn_count_30d`` (transactions), ``avg_amount_30d`` and
  ``last_txn_time``, the time of the latest transaction within 30 days (a timestamp:
  null when there is none; the input of request-time features such as the days since
  the last transaction, not of the model matrix).
- ``customer_profile`` (SQL transform, daily): ``segment``, ``region``, ``is_premium``
  and ``tenure_days`` for every customer signed up by that day; a row's ``event_time``
  is a midnight (UTC).
- :data:`DAYS_SINCE_LAST_TXN`, a request-time (on-demand) feature: the days between the
  request's ``prediction_time`` and ``last_txn_time``, computed by
  :func:`days_since_last_txn` in the training set (Spark) and in ``get_features``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from seeknal_spark.definitions.aggregation import Aggregation
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.definitions.on_demand import OnDemandFeature

if TYPE_CHECKING:
    from seeknal_spark.store.feature_group import FeatureGroup, InputSource
    from seeknal_spark.store.feature_store import FeatureStore

__all__ = [
    "CUSTOMER",
    "CUSTOMER_PROFILE_FEATURES",
    "CUSTOMER_PROFILE_SQL",
    "CUSTOMER_SPEND_AGGREGATIONS",
    "CUSTOMER_SPEND_DEFAULTS",
    "CUSTOMER_SPEND_FEATURES",
    "DAYS_SINCE_LAST_TXN",
    "days_since_last_txn",
    "example_feature_groups",
]

#: The entity of both example groups.
CUSTOMER = Entity("customer", ["customer_id"])

#: The features of ``customer_spend``: windows over the transactions, by their names.
CUSTOMER_SPEND_AGGREGATIONS: tuple[Aggregation, ...] = (
    Aggregation("amount", "sum", ["7d", "30d"], name=["spend_7d", "spend_30d"]),
    Aggregation("*", "count_events", "30d", name="txn_count_30d"),
    Aggregation("amount", "avg", "30d", name="avg_amount_30d"),
    Aggregation("ts", "last", "30d", name="last_txn_time"),  # the event time itself
)

#: Feature name -> Spark type of ``customer_spend`` (what the aggregations give over the
#: transactions: ``amount`` is a double, ``ts`` a timestamp).
CUSTOMER_SPEND_FEATURES: dict[str, str] = {
    "spend_7d": "double",
    "spend_30d": "double",
    "txn_count_30d": "bigint",
    "avg_amount_30d": "double",
    "last_txn_time": "timestamp",
}

#: What a lookup of ``customer_spend`` gives for an empty window: 0 spent, 0 transactions,
#: an average of 0.0 (as the example always had); ``last_txn_time`` has none (null).
CUSTOMER_SPEND_DEFAULTS: dict[str, float | int] = {
    "spend_7d": 0.0,
    "spend_30d": 0.0,
    "txn_count_30d": 0,
    "avg_amount_30d": 0.0,
}

#: Days counted when there was no transaction in the 30-day window of ``last_txn_time``.
NO_RECENT_TXN_DAYS = 30.0


def days_since_last_txn(prediction_time: datetime, last_txn_time: datetime | None) -> float:
    """Days (fractional) from the latest transaction to the request's time.

    ``last_txn_time`` is null when the customer made no transaction in the 30 days
    before: that counts as :data:`NO_RECENT_TXN_DAYS`. Both arrive as UTC datetimes.

    Examples
    --------
    >>> from datetime import timezone
    >>> days_since_last_txn(datetime(2024, 3, 2, 12, tzinfo=timezone.utc),
    ...                     datetime(2024, 3, 1, tzinfo=timezone.utc))
    1.5
    >>> days_since_last_txn(datetime(2024, 3, 2, tzinfo=timezone.utc), None)
    30.0
    """
    if last_txn_time is None:
        return NO_RECENT_TXN_DAYS
    return (prediction_time - last_txn_time).total_seconds() / 86_400


#: The example's on-demand feature: the request's time against the looked-up
#: ``last_txn_time``; the same function runs in training and serving.
DAYS_SINCE_LAST_TXN = OnDemandFeature(
    "days_since_last_txn",
    ["prediction_time", "last_txn_time"],
    "double",
    days_since_last_txn,
    description="Days from the customer's latest transaction (30-day window) to the request.",
)

CUSTOMER_PROFILE_FEATURES: dict[str, str] = {
    "segment": "string",
    "region": "string",
    "is_premium": "boolean",
    "tenure_days": "int",
}


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
        ``{"customer_spend": FeatureGroup, "customer_profile": FeatureGroup}``:
        ``customer_spend`` is an event group (it stores the transactions of each window
        written), ``customer_profile`` a daily group.
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
        "ts",
        inputs={"transactions": sources["transactions"]},  # stored as is: no transform
        aggregations=CUSTOMER_SPEND_AGGREGATIONS,
        store=store,
        description="Spend and transactions in the last 7/30 days and the latest one per customer.",
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
