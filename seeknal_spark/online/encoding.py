"""How entity keys and feature values are turned into bytes for an online sink, and back.

Both directions are driven by the Spark type of each column, which travels with every
online generation in its metadata, so no per-value type tag is needed and nothing is
pickled:

* **Keys.** An entity key (one value per join-key column) becomes the compact JSON array
  of its normalised parts, e.g. ``["CUST001"]`` or ``["1","12"]``. JSON quoting makes the
  encoding unambiguous: ``("1", "12")`` and ``("11", "2")`` give ``["1","12"]`` and
  ``["11","2"]``. A caller's key values are first coerced to the column's type (the
  string ``"5"`` for an integer key column is ``5``), so the executor (which encodes from
  Arrow) and the serving process (which encodes from Python values) agree byte for byte.
* **Values.** The features of one key of one lookup are stored together as one compact
  JSON array, in the lookup's feature order. Floats are written with ``repr`` (shortest
  round-trip form, so they come back bit-exact; ``NaN``/``Infinity``/``-Infinity`` are
  kept), integers at any size, timestamps as microseconds since the epoch (UTC), dates
  as days since the epoch, decimals as strings, binary as base64, arrays/maps/structs
  as nested arrays. Decoding turns them back into ``float``, ``int``, ``bool``, ``str``,
  tz-aware UTC ``datetime``, naive ``datetime`` (``timestamp_ntz``), ``date``,
  ``Decimal``, ``bytes``, ``list``, ``dict`` and ``None``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import types as T

from seeknal_spark.errors import ColumnTypeError

__all__ = [
    "KEY_TYPES",
    "ValueCodec",
    "arrow_to_json_values",
    "coerce_key_value",
    "decoder_for",
    "encode_key",
    "encode_rows",
    "encoder_for",
    "json_fragments",
    "quote_string",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_DATE = date(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)

#: Spark types allowed in entity-key columns.
KEY_TYPES: tuple[type[T.DataType], ...] = (
    T.StringType,
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
    T.BooleanType,
    T.DateType,
    T.TimestampType,
    T.TimestampNTZType,
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode
_loads = json.loads
_quote = json.encoder.encode_basestring  # what _dumps does to a str (ensure_ascii=False)
quote_string: Callable[[str], str] = _quote
"""JSON string literal of a ``str``, exactly as the key encoding writes it."""
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # the characters JSON escapes (others are kept as they are)
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)

Converter = Callable[[Any], Any]


def _ts_to_us(v: datetime) -> int:
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    return (v - _EPOCH) // _ONE_US


def _ntz_to_us(v: datetime) -> int:
    return (v.replace(tzinfo=None) - _EPOCH_NAIVE) // _ONE_US


def encoder_for(dtype: T.DataType) -> Converter | None:
    """Return a function turning a Python value of ``dtype`` into a JSON-ready value.

    ``None`` means the value is already JSON-ready (numbers, booleans, strings). The
    returned function is not called on ``None`` by the callers for scalars; nested
    converters handle ``None`` themselves.
    """
    if isinstance(dtype, T.TimestampType):
        return _ts_to_us
    if isinstance(dtype, T.TimestampNTZType):
        return _ntz_to_us
    if isinstance(dtype, T.DateType):
        return lambda v: (v - _EPOCH_DATE).days
    if isinstance(dtype, T.DecimalType):
        return str
    if isinstance(dtype, T.BinaryType):
        return lambda v: base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(dtype, T.ArrayType):
        inner = encoder_for(dtype.elementType)
        if inner is None:
            return list
        return lambda v: [None if x is None else inner(x) for x in v]
    if isinstance(dtype, T.MapType):
        kc = encoder_for(dtype.keyType) or _identity
        vc = encoder_for(dtype.valueType) or _identity
        return lambda v: [[kc(k), None if x is None else vc(x)] for k, x in _pairs(v)]
    if isinstance(dtype, T.StructType):
        convs = [(f.name, encoder_for(f.dataType) or _identity) for f in dtype.fields]
        return lambda v: [None if _field(v, n) is None else c(_field(v, n)) for n, c in convs]
    return None


def decoder_for(dtype: T.DataType) -> Converter | None:
    """Return the inverse of :func:`encoder_for` (``None`` when JSON already fits)."""
    if isinstance(dtype, T.TimestampType):
        return lambda v: _EPOCH + timedelta(microseconds=v)
    if isinstance(dtype, T.TimestampNTZType):
        return lambda v: _EPOCH_NAIVE + timedelta(microseconds=v)
    if isinstance(dtype, T.DateType):
        return lambda v: _EPOCH_DATE + timedelta(days=v)
    if isinstance(dtype, T.DecimalType):
        return Decimal
    if isinstance(dtype, T.BinaryType):
        return base64.b64decode
    if isinstance(dtype, T.ArrayType):
        inner = decoder_for(dtype.elementType)
        if inner is None:
            return None
        return lambda v: [None if x is None else inner(x) for x in v]
    if isinstance(dtype, T.MapType):
        kc = decoder_for(dtype.keyType) or _identity
        vc = decoder_for(dtype.valueType) or _identity
        return lambda v: {kc(k): None if x is None else vc(x) for k, x in v}
    if isinstance(dtype, T.StructType):
        convs = [(f.name, decoder_for(f.dataType) or _identity) for f in dtype.fields]
        return lambda v: {
            n: None if x is None else c(x) for (n, c), x in zip(convs, v, strict=True)
        }
    return None


def _identity(v: Any) -> Any:
    return v


def _pairs(v: Any) -> list[tuple[Any, Any]]:
    if isinstance(v, dict):
        return list(v.items())
    return [tuple(p) for p in v]  # Arrow gives maps as lists of (key, value) pairs


def _field(v: Any, name: str) -> Any:
    if isinstance(v, dict):
        return v.get(name)
    return getattr(v, name)


def arrow_to_json_values(array: pa.Array | pa.ChunkedArray, dtype: T.DataType) -> list[Any]:
    """Convert one Arrow column of Spark type ``dtype`` to a list of JSON-ready values.

    Fast paths avoid building ``datetime``/``date`` objects: timestamps and dates are
    reinterpreted as integers inside Arrow.
    """
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        arr = array
        if pa.types.is_timestamp(arr.type) and arr.type.unit != "us":
            arr = arr.cast(pa.timestamp("us", tz=arr.type.tz))
        ints: list[Any] = arr.cast(pa.int64()).to_pylist()
        return ints
    if isinstance(dtype, T.DateType):
        days: list[Any] = array.cast(pa.int32()).to_pylist()
        return days
    values: list[Any] = array.to_pylist()
    conv = encoder_for(dtype)
    if conv is None:
        return values
    return [None if v is None else conv(v) for v in values]


def coerce_key_value(value: Any, dtype: T.DataType, column: str) -> Any:
    """Turn a caller's key value into the JSON-ready form the executor writes.

    Raises
    ------
    TypeError
        When ``value`` cannot stand for a key of ``dtype`` (naming the column).
    """
    if value is None:
        return None
    try:
        if isinstance(dtype, T.StringType):
            return value if isinstance(value, str) else str(value)
        if isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(dtype, T.BooleanType):
            if isinstance(value, str):
                return {"true": True, "false": False}[value.lower()]
            return bool(value)
        if isinstance(dtype, T.DateType):
            if isinstance(value, str):
                value = date.fromisoformat(value)
            if isinstance(value, datetime):
                value = value.date()
            return (value - _EPOCH_DATE).days
        if isinstance(dtype, T.TimestampType):
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            return _ts_to_us(value)
        if isinstance(dtype, T.TimestampNTZType):
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            return _ntz_to_us(value)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise TypeError(
            f"key column {column!r} is {dtype.simpleString()}: {value!r} cannot be used as "
            f"its value; pass a {dtype.simpleString()} value"
        ) from exc
    raise ColumnTypeError(
        f"key column {column!r} has unsupported type {dtype.simpleString()}: use string, "
        "integer, boolean, date or timestamp join keys"
    )


def _fragment(value: Any) -> str:
    if type(value) is str:
        return _quote(value)
    if type(value) is int:
        return int.__repr__(value)
    return _dumps(value)


def encode_key(parts: Sequence[Any]) -> str:
    """Encode normalised key parts (see :func:`coerce_key_value`) as a JSON array string.

    Equal to ``json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)``.
    """
    if len(parts) == 1:
        return "[" + _fragment(parts[0]) + "]"
    return "[" + ",".join(map(_fragment, parts)) + "]"


class ValueCodec:
    """Encoder/decoder of the feature values of one lookup (one JSON array per key).

    Parameters
    ----------
    types:
        The Spark type of each feature, in storage order.
    """

    def __init__(self, types: Sequence[T.DataType]) -> None:
        self.types = list(types)
        self._enc = [encoder_for(t) for t in self.types]
        self._dec = [decoder_for(t) for t in self.types]
        self._plain_decode = all(d is None for d in self._dec)

    def encode(self, values: Sequence[Any]) -> str:
        """Encode one row of Python feature values."""
        return _dumps(
            [v if c is None or v is None else c(v) for v, c in zip(values, self._enc, strict=True)]
        )

    def decode_many(self, raws: Sequence[bytes | None]) -> list[list[Any] | None]:
        """Decode many stored values at once (``None`` stays ``None``): one JSON parse."""
        if not raws:
            return []
        if len(raws) == 1:
            one = raws[0]
            return [None if one is None else self.decode(one)]
        rows: list[Any] = _loads(
            b"[" + b",".join([b"null" if r is None else r for r in raws]) + b"]"
        )
        if self._plain_decode:
            return rows
        dec = self._dec
        return [
            None
            if row is None
            else [v if d is None or v is None else d(v) for v, d in zip(row, dec, strict=True)]
            for row in rows
        ]

    def decode(self, raw: bytes | str) -> list[Any]:
        """Decode one stored value back into Python feature values."""
        values: list[Any] = _loads(raw)
        if self._plain_decode:
            return values
        return [
            v if d is None or v is None else d(v) for v, d in zip(values, self._dec, strict=True)
        ]


def json_fragments(array: pa.Array | pa.ChunkedArray, dtype: T.DataType) -> pa.Array:
    """Encode one Arrow column of Spark type ``dtype`` as JSON texts (no nulls: ``"null"``).

    Numbers, booleans, plain strings, timestamps and dates are formatted inside Arrow
    (vectorised); the rest goes through Python. Doubles print in shortest round-trip
    form, so they parse back to the same bits (integral ones get ``.0`` so that JSON
    reads them as floats); ``NaN``/``Infinity``/``-0.0`` take the Python path.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    out: pa.Array | None = None
    if isinstance(dtype, (T.DoubleType, T.FloatType)):
        doubles = array.cast(pa.float64())
        text = doubles.cast(pa.string())
        special = pc.or_(pc.invert(pc.is_finite(doubles)), pc.equal(text, "-0"))
        if not pc.any(special).as_py():
            out = text
            if pc.any(pc.equal(pc.floor(doubles), doubles)).as_py():
                # Arrow prints 1.0 as "1", which JSON would read back as an int
                integral = pc.match_substring_regex(text, r"^-?[0-9]+$")
                out = pc.if_else(integral, pc.binary_join_element_wise(text, ".0", ""), text)
    elif isinstance(dtype, _INTEGRAL):
        out = array.cast(pa.string())
    elif isinstance(dtype, T.BooleanType):
        out = pc.if_else(array, "true", "false")
    elif isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        if pa.types.is_timestamp(array.type) and array.type.unit != "us":
            array = array.cast(pa.timestamp("us", tz=array.type.tz))
        out = array.cast(pa.int64()).cast(pa.string())
    elif isinstance(dtype, T.DateType):
        out = array.cast(pa.int32()).cast(pa.string())
    elif isinstance(dtype, T.StringType):
        text = array.cast(pa.string())
        if not pc.any(pc.match_substring_regex(text, _NEEDS_ESCAPE)).as_py():
            out = pc.binary_join_element_wise('"', text, '"', "")
        else:
            quoted = [None if v is None else _quote(v) for v in text.to_pylist()]
            out = pa.array(quoted, pa.string())
    if out is None:
        out = pa.array([_dumps(v) for v in arrow_to_json_values(array, dtype)], pa.string())
    return out.fill_null("null") if out.null_count else out


def encode_rows(arrays: Sequence[pa.Array], dtypes: Sequence[T.DataType]) -> pa.Array:
    """Encode Arrow columns row-wise as JSON arrays: the stored form of keys and values.

    For keys, the result equals :func:`encode_key` of the coerced Python values, byte for
    byte; for values, :meth:`ValueCodec.decode` reads it back.
    """
    frags = [json_fragments(a, t) for a, t in zip(arrays, dtypes, strict=True)]
    if not frags:
        raise ValueError("encode_rows needs at least one column")
    body = frags[0] if len(frags) == 1 else pc.binary_join_element_wise(*frags, ",")
    return pc.binary_join_element_wise("[", body, "]", "")
