"""A user module whose transform calls a helper (for the transform-hash tests)."""

from __future__ import annotations

from typing import Any


def helper(frame: Any) -> Any:
    return frame.where("amount > 0")


def transform(txns: Any) -> Any:
    return helper(txns).select("customer_id")
