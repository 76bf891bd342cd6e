"""Key and value encoding of the online store: exact, type-preserving, unambiguous."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyspark.sql import types as T

from seeknal_spark.errors import ColumnTypeError
from seeknal_spark.online import OnlineFeatures
from seeknal_spark.online.encoding import (
    ValueCodec,
    arrow_to_json_values,
    coerce_key_value,
    encode_key,
)

UTC = timezone.utc

TYPES = [
    T.DoubleType(),
    T.FloatType(),
    T.LongType(),
    T.IntegerType(),
    T.StringType(),
    T.BooleanType(),
    T.TimestampType(),
    T.TimestampNTZType(),
    T.DateType(),
    T.DecimalType(20, 4),
    T.BinaryType(),
    T.ArrayType(T.DoubleType()),
    T.ArrayType(T.TimestampType()),
    T.MapType(T.StringType(), T.LongType()),
    T.StructType([T.StructField("a", T.LongType()), T.StructField("d", T.DateType())]),
]

ROW = [
    0.1 + 0.2,
    1.5,
    2**63 - 1,
    -(2**31),
    "héllo \"wörld\" \\ 日本 \n",
    True,
    datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 0, 0, 1),
    date(1900, 1, 1),
    Decimal("12345678.9012"),
    b"\x00\xffbytes",
    [1.0, None, -0.0, 1e308],
    [datetime(2000, 1, 1, tzinfo=UTC), None],
    {"a": 1, "b": None},
    {"a": 7, "d": date(2024, 6, 1)},
]


def test_every_type_round_trips_exactly() -> None:
    codec = ValueCodec(TYPES)
    back = codec.decode(codec.encode(ROW).encode())
    assert back == ROW
    assert back[0] == 0.30000000000000004
    assert back[6].tzinfo is not None and back[6].utcoffset() == timedelta(0)
    assert back[7].tzinfo is None
    assert type(back[5]) is bool and type(back[2]) is int


def test_nulls_round_trip() -> None:
    codec = ValueCodec(TYPES)
    assert codec.decode(codec.encode([None] * len(TYPES))) == [None] * len(TYPES)


def test_special_floats_round_trip() -> None:
    codec = ValueCodec([T.DoubleType()] * 4)
    back = codec.decode(codec.encode([math.nan, math.inf, -math.inf, -0.0]))
    assert math.isnan(back[0]) and back[1] == math.inf and back[2] == -math.inf
    assert math.copysign(1.0, back[3]) == -1.0


@given(st.floats(allow_nan=False), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text())
def test_scalars_round_trip_bit_exact(x: float, n: int, s: str) -> None:
    codec = ValueCodec([T.DoubleType(), T.LongType(), T.StringType()])
    back = codec.decode(codec.encode([x, n, s]))
    assert back == [x, n, s]
    assert math.copysign(1.0, back[0]) == math.copysign(1.0, x)


def test_arrow_columns_encode_like_python_values() -> None:
    ts = [datetime(2024, 1, 1, 12, tzinfo=UTC), None]
    days = [date(2024, 1, 2), None]
    arrow_ts = arrow_to_json_values(pa.array(ts, pa.timestamp("us", tz="UTC")), T.TimestampType())
    arrow_d = arrow_to_json_values(pa.array(days, pa.date32()), T.DateType())
    codec = ValueCodec([T.TimestampType(), T.DateType()])
    assert ValueCodec.encode_columns([arrow_ts, arrow_d]) == [
        codec.encode([ts[0], days[0]]),
        codec.encode([None, None]),
    ]


def test_keys_do_not_collide() -> None:
    assert encode_key(["1", "12"]) != encode_key(["11", "2"])
    assert encode_key(["a:b", "c"]) != encode_key(["a", "b:c"])
    assert encode_key(["1"]) != encode_key([1])
    assert encode_key(['x"', "y"]) != encode_key(["x", '"y'])


def test_key_values_are_coerced_to_the_column_type() -> None:
    assert coerce_key_value("5", T.LongType(), "id") == 5
    assert coerce_key_value(5, T.StringType(), "id") == "5"
    assert coerce_key_value("2024-01-02", T.DateType(), "d") == coerce_key_value(
        date(2024, 1, 2), T.DateType(), "d"
    )
    naive = datetime(2024, 1, 1)
    assert coerce_key_value(naive, T.TimestampType(), "t") == coerce_key_value(
        naive.replace(tzinfo=UTC), T.TimestampType(), "t"
    )
    with pytest.raises(TypeError, match="'id'"):
        coerce_key_value("abc", T.LongType(), "id")
    with pytest.raises(ColumnTypeError, match="'x'"):
        coerce_key_value(1.5, T.DoubleType(), "x")


def test_result_is_a_mapping_for_one_key_and_a_sequence_of_rows() -> None:
    one = OnlineFeatures(["a", "b"], [{"id": 1}], [{"a": 1, "b": None}], [True], "7")
    names = ["a", "b"]
    assert [[one[f] for f in names]] == [[1, None]]
    assert "a" in one and one.get("b") is None and one.keys() == names
    assert one.items() == [("a", 1), ("b", None)]
    assert len(one) == 1 and one[0] == {"a": 1, "b": None} and list(one) == [one[0]]
    many = OnlineFeatures(
        names, [{"id": 1}, {"id": 2}], [{"a": 1, "b": 2}, {"a": 3, "b": None}], [True, False], "7"
    )
    assert len(many) == 2 and many[1]["a"] == 3 and many.to_list() == [[1, 2], [3, None]]
    with pytest.raises(TypeError, match="2 keys"):
        many["a"]
    frame = many.to_pandas()
    assert list(frame.columns) == ["id", "a", "b"] and frame["a"].tolist() == [1, 3]
    with pytest.raises(KeyError, match="'zz'"):
        one["zz"]
