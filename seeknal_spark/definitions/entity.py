"""Entities: what features describe (a customer, a product), named by their join keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seeknal_spark.definitions.naming import validate_name

__all__ = ["Entity"]


@dataclass(frozen=True, init=False)
class Entity:
    """A business entity and the key columns that identify it.

    Parameters
    ----------
    name:
        The entity's name, e.g. ``"customer"``.
    join_keys:
        One or more key column names, e.g. ``["customer_id"]``; a composite key lists several.

    Examples
    --------
    >>> Entity("customer", ["customer_id"]).join_keys
    ('customer_id',)
    """

    name: str
    join_keys: tuple[str, ...]

    def __init__(self, name: str, join_keys: Sequence[str] | str) -> None:
        validate_name(name, "entity")
        keys = (join_keys,) if isinstance(join_keys, str) else tuple(join_keys)
        if not keys:
            raise ValueError(f"entity {name!r} needs at least one join key, e.g. ['{name}_id']")
        for key in keys:
            validate_name(key, "join key")
        if len({k.lower() for k in keys}) != len(keys):
            raise ValueError(f"entity {name!r} lists a join key twice: {list(keys)}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "join_keys", keys)
