"""Spark types from the short names used in declarations and YAML ("double", "array<string>")."""

from __future__ import annotations

import re

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    TimestampNTZType,
    TimestampType,
)

__all__ = ["parse_type"]

_ATOMIC: dict[str, DataType] = {
    "string": StringType(),
    "str": StringType(),
    "double": DoubleType(),
    "float": FloatType(),
    "int": IntegerType(),
    "integer": IntegerType(),
    "bigint": LongType(),
    "long": LongType(),
    "smallint": ShortType(),
    "short": ShortType(),
    "tinyint": ByteType(),
    "byte": ByteType(),
    "boolean": BooleanType(),
    "bool": BooleanType(),
    "timestamp": TimestampType(),
    "timestamp_ntz": TimestampNTZType(),
    "date": DateType(),
    "binary": BinaryType(),
}


def parse_type(value: DataType | str) -> DataType:
    """A Spark DataType from a DataType or its simple string.

    Supports the atomic names, ``decimal(p,s)``, ``array<T>`` and ``map<K,V>``.

    >>> parse_type("array<double>").simpleString()
    'array<double>'
    """
    if isinstance(value, DataType):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a type must be a Spark DataType or a type name, got {value!r}")
    text = value.strip().lower().replace(" ", "")
    if text in _ATOMIC:
        return _ATOMIC[text]
    decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", text)
    if decimal:
        return DecimalType(int(decimal.group(1)), int(decimal.group(2)))
    if text.startswith("array<") and text.endswith(">"):
        return ArrayType(parse_type(text[6:-1]))
    if text.startswith("map<") and text.endswith(">"):
        inner = text[4:-1]
        depth = 0
        for i, ch in enumerate(inner):
            depth += ch == "<"
            depth -= ch == ">"
            if ch == "," and depth == 0:
                return MapType(parse_type(inner[:i]), parse_type(inner[i + 1 :]))
    raise ValueError(
        f"unknown type {value!r}: use e.g. 'double', 'bigint', 'string', 'boolean', "
        "'timestamp', 'date', 'decimal(10,2)', 'array<double>'"
    )
