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
    coerce_key_value,
    encode_key,
    encode_rows,
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
    'héllo "wörld" \\ 日本 \n',
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


def test_arrow_rows_decode_to_the_same_values() -> None:
    """The executors' vectorised encoding reads back exactly (all types, nulls, NaN...)."""
    arrow_types = {
        "timestamp": pa.timestamp("us", tz="UTC"),
        "timestamp_ntz": pa.timestamp("us"),
        "float": pa.float32(),
        "decimal(20,4)": pa.decimal128(20, 4),
        "map<string,bigint>": pa.map_(pa.string(), pa.int64()),
        "array<timestamp>": pa.list_(pa.timestamp("us", tz="UTC")),
        "struct<a:bigint,d:date>": pa.struct([("a", pa.int64()), ("d", pa.date32())]),
    }
    rows = [ROW, [None] * len(TYPES)]
    arrays = []
    for i, t in enumerate(TYPES):
        col = [r[i] for r in rows]
        if isinstance(t, T.MapType):
            col = [None if v is None else list(v.items()) for v in col]
        arrow_type = arrow_types.get(t.simpleString())
        arrays.append(pa.array(col, arrow_type) if arrow_type else pa.array(col))
    codec = ValueCodec(TYPES)
    encoded = encode_rows(arrays, TYPES).to_pylist()
    assert [codec.decode(e) for e in encoded] == rows
    specials = pa.array([math.nan, -0.0, math.inf, None, 1.0, 0.1])
    back = ValueCodec([T.DoubleType()]).decode
    got = [back(e)[0] for e in encode_rows([specials], [T.DoubleType()]).to_pylist()]
    assert (
        math.isnan(got[0])
        and math.copysign(1, got[1]) == -1
        and got[2:] == [math.inf, None, 1.0, 0.1]
    )
    assert type(got[4]) is float


@given(
    st.lists(
        st.tuples(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans()),
        min_size=1,
        max_size=20,
    )
)
def test_arrow_keys_equal_python_keys(keys: list[tuple[str, int, bool]]) -> None:
    types = [T.StringType(), T.LongType(), T.BooleanType()]
    arrays = [pa.array([k[i] for k in keys]) for i in range(3)]
    assert encode_rows(arrays, types).to_pylist() == [encode_key(list(k)) for k in keys]
    stamps = [datetime(2024, 1, 1, tzinfo=UTC), datetime(1960, 5, 5, 1, 2, 3, 4, tzinfo=UTC)]
    days = [date(2024, 1, 1), date(1901, 2, 3)]
    got = encode_rows(
        [pa.array(stamps, pa.timestamp("us", tz="UTC")), pa.array(days, pa.date32())],
        [T.TimestampType(), T.DateType()],
    ).to_pylist()
    want = [
        encode_key(
            [coerce_key_value(s, T.TimestampType(), "t"), coerce_key_value(d, T.DateType(), "d")]
        )
        for s, d in zip(stamps, days, strict=True)
    ]
    assert got == want


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
    one = OnlineFeatures(["a", "b"], [{"id": 1}], [[1, None]], [True], "7")
    names = ["a", "b"]
    assert [[one[f] for f in names]] == [[1, None]]
    assert "a" in one and one.get("b") is None and one.keys() == names
    assert one.items() == [("a", 1), ("b", None)]
    assert len(one) == 1 and one[0] == {"a": 1, "b": None} and list(one) == [one[0]]
    many = OnlineFeatures(names, [{"id": 1}, {"id": 2}], [[1, 2], [3, None]], [True, False], "7")
    assert len(many) == 2 and many[1]["a"] == 3 and many.to_list() == [[1, 2], [3, None]]
    with pytest.raises(TypeError, match="2 keys"):
        many["a"]
    frame = many.to_pandas()
    assert list(frame.columns) == ["id", "a", "b"] and frame["a"].tolist() == [1, 3]
    with pytest.raises(KeyError, match="'zz'"):
        one["zz"]
