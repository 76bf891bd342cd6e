"""The example project: seeded synthetic customers and transactions, spend windows and profile."""

from __future__ import annotations

from seeknal_spark.example.data import (
    churn_spine,
    customers,
    transactions,
    write_example_data,
)
from seeknal_spark.example.features import CUSTOMER, example_feature_groups
from seeknal_spark.example.run import run_example

__all__ = [
    "CUSTOMER",
    "churn_spine",
    "customers",
    "example_feature_groups",
    "run_example",
    "transactions",
    "write_example_data",
]
