"""Time-window aggregations as plain data: a column, a function and windows.

An :class:`Aggregation` declares features such as "sum of ``amount`` over the last 7
days": one feature per window, named ``<column>_<function>_<window>`` unless named
explicitly. Everything here is checked before any Spark job runs:
:class:`Aggregation` itself rejects unknown functions, unparsable or non-positive windows
and invalid names (:class:`~seeknal_spark.errors.ConfigurationError`);
:func:`check_columns` checks the event columns against a schema
(:class:`~seeknal_spark.errors.MissingColumnError`,
:class:`~seeknal_spark.errors.ColumnTypeError`) and gives the output types;
:func:`check_names` rejects features whose names clash with each other or with other
columns. The window semantics (which events a window holds at a given time) belong to
the engine, :func:`seeknal_spark.offline.windows.window_aggregates`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from pyspark.sql.types import (
    BinaryType,
    BooleanType,
    CharType,
    DataType,
    DateType,
    DoubleType,
    IntegralType,
    LongType,
    NumericType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
    VarcharType,
)

from seeknal_spark.definitions.feature import Feature
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ColumnTypeError, ConfigurationError, MissingColumnError

__all__ = [
    "EVERY_EVENT",
    "FUNCTIONS",
    "MAX_WINDOW",
    "Aggregation",
    "check_columns",
    "check_names",
    "COUNT_FUNCTIONS",
    "aggregation_features",
    "aggregations_of",
    "parse_window",
]

#: The functions whose features are never null: 0 for an empty window.
COUNT_FUNCTIONS = ("count", "count_events", "approx_count_distinct")

#: The functions, with what each computes. Nulls of the column are ignored by every
#: function but ``count_events``; an empty window gives 0 for the counts and null for
#: the others.
FUNCTIONS: Mapping[str, str] = {
    "count": "number of non-null values (long)",
    "count_events": "number of events, nulls included (long); the column may be '*'",
    "sum": "sum (long for integral columns, double otherwise)",
    "avg": "mean (double)",
    "min": "smallest value (the column's type)",
    "max": "greatest value (the column's type)",
    "stddev": "sample standard deviation, null below two values (double), as Spark's stddev",
    "variance": "sample variance, null below two values (double), as Spark's variance",
    "last": "value of the latest event; ties on time: the greatest value (the column's type)",
    "approx_count_distinct": "number of distinct values, computed exactly (long)",
}

#: ``count_events`` may name this instead of a column.
EVERY_EVENT = "*"

#: The longest window accepted (about 10,000 years): longer ones overflow microseconds.
MAX_WINDOW = timedelta(days=3_652_500)

_NUMERIC_FUNCTIONS = ("sum", "avg", "stddev", "variance")
_ORDERED_FUNCTIONS = ("min", "max", "last", "approx_count_distinct")
_ORDERED_TYPES = (
    NumericType,
    StringType,
    CharType,
    VarcharType,
    BinaryType,
    BooleanType,
    DateType,
    TimestampType,
    TimestampNTZType,
)
_ZERO = timedelta(0)
_WINDOW = re.compile(r"^([1-9][0-9]*)(us|ms|s|m|h|d|w)$")
_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
    "us": timedelta(microseconds=1),
}


def parse_window(window: str | timedelta, what: str = "window") -> tuple[str, timedelta]:
    """``(spelling, length)`` of a window: ``"30s"``, ``"15m"``, ``"1h"``, ``"7d"``,
    ``"2w"`` (also ``"ms"``, ``"us"``) or a positive :class:`~datetime.timedelta`.

    A string keeps its spelling; a timedelta is spelled in the largest unit among days,
    hours, minutes, seconds, milliseconds and microseconds that divides it.

    Raises
    ------
    ConfigurationError
        Naming ``what``, when the window is unparsable, not positive or too long.

    Examples
    --------
    >>> parse_window("7d")
    ('7d', datetime.timedelta(days=7))
    >>> parse_window(timedelta(hours=36))
    ('36h', datetime.timedelta(days=1, seconds=43200))
    >>> parse_window("7 days")
    Traceback (most recent call last):
    ...
    seeknal_spark.errors.ConfigurationError: window '7 days' is not ...
    """
    if isinstance(window, str):
        match = _WINDOW.match(window)
        if match is None:
            raise ConfigurationError(
                f"{what} {window!r} is not a window: write a positive whole number and a unit "
                "(s, m, h, d, w; ms, us), e.g. '30s', '15m', '1h', '7d', '2w', or a timedelta"
            )
        length = int(match.group(1)) * _UNITS[match.group(2)]
        label = window
    elif isinstance(window, timedelta):
        if window <= timedelta(0):
            raise ConfigurationError(f"{what} {window!r} is not positive: give a window > 0")
        length = window
        unit = next(u for u in ("d", "h", "m", "s", "ms", "us") if window % _UNITS[u] == _ZERO)
        label = f"{window // _UNITS[unit]}{unit}"
    else:
        raise ConfigurationError(
            f"{what} {window!r} is a {type(window).__name__}: give a string such as '7d' "
            "or a datetime.timedelta"
        )
    if length > MAX_WINDOW:
        raise ConfigurationError(f"{what} {window!r} is longer than {MAX_WINDOW.days} days")
    return label, length


@dataclass(frozen=True, init=False)
class Aggregation:
    """Features aggregating one event column over time windows, one feature per window.

    Parameters
    ----------
    column:
        The event column aggregated (``"*"`` for ``count_events``: every event).
    function:
        One of :data:`FUNCTIONS`: ``count`` (non-null values), ``count_events`` (every
        event), ``sum``, ``avg``, ``min``, ``max``, ``stddev`` and ``variance`` (sample,
        like Spark's), ``last`` (the value of the latest event holding one; among events at
        that same time, the greatest value, in Spark's order with NaN greatest), and
        ``approx_count_distinct``, which is computed *exactly* (error 0, within the bound
        of any sketch: sliding windows are counted with each value's previous occurrence,
        no sketch involved).
    windows:
        One window or several: ``"30s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"7d"``,
        ``"2w"`` or positive timedeltas.
    name:
        The feature names: one name per window (a single string when there is one
        window). Default ``<column>_<function>_<window>`` with the window spelled as given
        (``amount_sum_7d``); for ``count_events`` over ``"*"``: ``count_events_<window>``.

    Output types: ``long`` for the counts and ``approx_count_distinct`` (0 for an empty
    window), ``long`` for the sum of an integral column and ``double`` for other sums,
    ``double`` for ``avg``/``stddev``/``variance``, the column's own type for
    ``min``/``max``/``last``; null for an empty window (every function but the counts).
    Nulls of the column are ignored, except by ``count_events``.

    Raises
    ------
    ConfigurationError
        Naming the aggregation: an unknown function, no window, an unparsable, non-positive
        or repeated window, names that do not match the windows or are invalid.

    Examples
    --------
    >>> Aggregation("amount", "sum", windows=["1d", "7d"]).feature_names()
    ['amount_sum_1d', 'amount_sum_7d']
    >>> Aggregation("*", "count_events", "1h", name="txn_count_1h").feature_names()
    ['txn_count_1h']
    >>> Aggregation("amount", "median", "7d")
    Traceback (most recent call last):
    ...
    seeknal_spark.errors.ConfigurationError: aggregation median(amount): unknown function ...
    """

    column: str
    function: str
    windows: tuple[timedelta, ...]
    labels: tuple[str, ...]
    names: tuple[str, ...]

    def __init__(
        self,
        column: str,
        function: str,
        windows: str | timedelta | Sequence[str | timedelta],
        *,
        name: str | Sequence[str] | None = None,
    ) -> None:
        what = f"aggregation {function}({column})"
        if not isinstance(column, str) or not column:
            raise ConfigurationError(f"{what}: the column must be a non-empty string")
        if function not in FUNCTIONS:
            raise ConfigurationError(
                f"{what}: unknown function {function!r}; use one of {sorted(FUNCTIONS)}"
            )
        if column == EVERY_EVENT and function != "count_events":
            raise ConfigurationError(
                f"{what}: '*' (every event) is only for count_events; name a column"
            )
        listed = [windows] if isinstance(windows, (str, timedelta)) else list(windows)
        if not listed:
            raise ConfigurationError(f"{what}: give at least one window, e.g. windows=['7d']")
        parsed = [parse_window(w, f"{what}: window") for w in listed]
        lengths = [length for _, length in parsed]
        if len(set(lengths)) != len(lengths):
            raise ConfigurationError(f"{what}: a window is listed twice: {listed}")
        labels = tuple(label for label, _ in parsed)
        if name is None:
            stem = function if column == EVERY_EVENT else f"{column}_{function}"
            names = tuple(f"{stem}_{label}" for label in labels)
        else:
            names = (name,) if isinstance(name, str) else tuple(name)
            if len(names) != len(labels):
                raise ConfigurationError(
                    f"{what}: {len(names)} name(s) {list(names)} for {len(labels)} window(s) "
                    f"{list(labels)}: give one name per window"
                )
        for feature in names:
            validate_name(feature, f"{what}: feature (pass name= to choose one)")
        if len({n.lower() for n in names}) != len(names):
            raise ConfigurationError(f"{what}: a feature name is given twice: {list(names)}")
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "windows", tuple(lengths))
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "names", names)

    def describe(self) -> str:
        """How errors name it: ``aggregation sum(amount) over ['1d', '7d']``."""
        return f"aggregation {self.function}({self.column}) over {list(self.labels)}"

    def feature_names(self) -> list[str]:
        """One feature name per window, in window order."""
        return list(self.names)

    @property
    def max_window(self) -> timedelta:
        """The longest of its windows."""
        return max(self.windows)

    @property
    def uses_values(self) -> bool:
        """Whether the column's values are read (all but ``count_events``)."""
        return self.function != "count_events"

    def output_type(self, column_type: DataType | None) -> DataType:
        """The Spark type of its features for a column of ``column_type`` (None: ``"*"``)."""
        if self.function in ("count", "count_events", "approx_count_distinct"):
            return LongType()
        if self.function == "sum" and isinstance(column_type, IntegralType):
            return LongType()
        if self.function in _NUMERIC_FUNCTIONS:
            return DoubleType()
        if column_type is None:  # unreachable: only count_events may read "*"
            raise ConfigurationError(f"{self.describe()}: needs a column")
        return column_type


def _check_type(agg: Aggregation, dtype: DataType, what: str) -> None:
    if agg.function in _NUMERIC_FUNCTIONS and not isinstance(dtype, NumericType):
        raise ColumnTypeError(
            f"{agg.describe()}: column {agg.column!r} of {what} is {dtype.simpleString()}, "
            f"but {agg.function} needs a number: cast it to a numeric type (e.g. double)"
        )
    if agg.function in _ORDERED_FUNCTIONS and not isinstance(dtype, _ORDERED_TYPES):
        raise ColumnTypeError(
            f"{agg.describe()}: column {agg.column!r} of {what} is {dtype.simpleString()}, "
            f"which {agg.function} cannot order: use a number, string, binary, boolean, "
            "date or timestamp column"
        )


def check_columns(
    aggregations: Sequence[Aggregation], schema: StructType, *, what: str = "the events"
) -> list[StructField]:
    """Check the aggregated columns of ``schema``; return the output fields, in order
    (per aggregation, per window).

    Raises
    ------
    MissingColumnError
        An aggregated column is absent (names the aggregation and the column).
    ColumnTypeError
        A non-numeric column for sum/avg/stddev/variance, or a column that cannot be
        ordered (array, map, struct...) for min/max/last/approx_count_distinct.

    Examples
    --------
    >>> from pyspark.sql.types import StringType, StructField, StructType
    >>> schema = StructType([StructField("merchant", StringType())])
    >>> check_columns([Aggregation("merchant", "approx_count_distinct", "30d")], schema)
    [StructField('merchant_approx_count_distinct_30d', LongType(), False)]
    >>> check_columns([Aggregation("merchant", "sum", "30d")], schema)
    Traceback (most recent call last):
    ...
    seeknal_spark.errors.ColumnTypeError: aggregation sum(merchant) over ['30d']: column ...
    """
    types = {f.name: f.dataType for f in schema.fields}
    fields = []
    for agg in aggregations:
        if not isinstance(agg, Aggregation):
            raise TypeError(f"expected Aggregation objects, got {type(agg).__name__}: {agg!r}")
        dtype: DataType | None = None
        if agg.column != EVERY_EVENT:
            if agg.column not in types:
                raise MissingColumnError(
                    f"{agg.describe()}: {what} have no column {agg.column!r}; its columns are "
                    f"{list(types)}: add it or fix the name"
                )
            dtype = types[agg.column]
            _check_type(agg, dtype, what)
        out = agg.output_type(dtype)
        counts = agg.function in ("count", "count_events", "approx_count_distinct")
        fields += [StructField(name, out, not counts) for name in agg.names]
    return fields


def check_names(
    aggregations: Sequence[Aggregation], existing: Iterable[str] = (), *, what: str = "the spine"
) -> None:
    """Raise :class:`~seeknal_spark.errors.ConfigurationError` when two features share a
    name, or one has the name of a column of ``existing`` (compared case-insensitively,
    as Spark does).

    Examples
    --------
    >>> aggs = [Aggregation("a", "sum", "1d"), Aggregation("b", "sum", "1d", name="a_sum_1d")]
    >>> check_names(aggs)
    Traceback (most recent call last):
    ...
    seeknal_spark.errors.ConfigurationError: feature 'a_sum_1d' comes from both ...
    """
    taken = {c.lower(): c for c in existing}
    seen: dict[str, str] = {}
    for agg in aggregations:
        for name in agg.names:
            if name.lower() in taken:
                raise ConfigurationError(
                    f"feature {name!r} of {agg.describe()} is already a column of {what} "
                    f"({taken[name.lower()]!r}): rename it with name="
                )
            if name.lower() in seen:
                raise ConfigurationError(
                    f"feature {name!r} comes from both {seen[name.lower()]} and "
                    f"{agg.describe()}: rename one with name="
                )
            seen[name.lower()] = agg.describe()


def aggregation_features(
    aggregations: Sequence[Aggregation], schema: StructType, *, what: str = "the events"
) -> list[Feature]:
    """The features of ``aggregations`` over events of ``schema``: name, output type and
    ``(column, function, window)``, as a feature group's definition records them.

    Raises what :func:`check_columns` raises.
    """
    fields = iter(check_columns(aggregations, schema, what=what))
    return [
        Feature(name, next(fields).dataType, (agg.column, agg.function, label))
        for agg in aggregations
        for label, name in zip(agg.labels, agg.names, strict=True)
    ]


def aggregations_of(features: Sequence[Feature]) -> list[Aggregation]:
    """The aggregations behind aggregation features (the inverse of
    :func:`aggregation_features`): one :class:`Aggregation` per (column, function), with
    its windows and names in the order given; features without one are skipped.

    Examples
    --------
    >>> from pyspark.sql.types import LongType
    >>> feats = [Feature("n_1d", LongType(), ("*", "count_events", "1d")),
    ...          Feature("n_7d", LongType(), ("*", "count_events", "7d"))]
    >>> [a.feature_names() for a in aggregations_of(feats)]
    [['n_1d', 'n_7d']]
    """
    grouped: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for feature in features:
        if feature.aggregation is not None:
            column, function, window = feature.aggregation
            grouped.setdefault((column, function), []).append((window, feature.name))
    return [
        Aggregation(column, function, [w for w, _ in items], name=[n for _, n in items])
        for (column, function), items in grouped.items()
    ]
