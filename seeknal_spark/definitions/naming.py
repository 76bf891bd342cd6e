"""Validation of the names that reach paths and SQL: groups, features, versions, tables."""

from __future__ import annotations

import re

from seeknal_spark.errors import InvalidNameError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_LEN = 128


def validate_name(name: object, what: str) -> str:
    """Return ``name`` if it is letters, digits and underscores (not starting with a digit).

    Parameters
    ----------
    name:
        The candidate name.
    what:
        What the name is for ("feature group", "feature", "version", ...), used in the message.

    Raises
    ------
    InvalidNameError
        When the name is empty, too long, or holds any other character.
    """
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > _MAX_LEN:
        raise InvalidNameError(
            f"invalid {what} name {name!r}: use 1-{_MAX_LEN} letters, digits and underscores, "
            "not starting with a digit (for example 'customer_spend')"
        )
    return name


def quote_identifier(name: str) -> str:
    """Back-quote a validated identifier for SQL text."""
    return "`" + name.replace("`", "``") + "`"
