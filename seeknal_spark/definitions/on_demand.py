"""Request-time (on-demand) features: one Python function, run in training and at serving.

An :class:`OnDemandFeature` is a name, its inputs, an output type and a function. Its
value is computed when it is needed, from

- request fields (in training: columns of the spine; at serving: the ``request`` rows
  given to ``OnlineTable.get_features``, then the key dicts),
- looked-up features (after their defaults are applied), and
- other on-demand features (evaluated first; a cycle is an error).

:func:`compute` is the one evaluator. The training set calls it on each Arrow batch of
the joined rows inside Spark (``mapInArrow``, see
:func:`seeknal_spark.training.on_demand.attach_on_demand`); ``OnlineTable.get_features``
calls it on the looked-up rows and the request. The same function object, the same
input normalisation, the same output check, so a served value equals the training value.

Two forms of function:

``mode="scalar"`` (default)
    ``fn(*inputs) -> value``, called once per row with Python values, in both places
    (in Spark, row by row inside each Arrow batch: no per-row Python UDF call, no
    per-row serialisation). The cheapest form online.
``mode="pandas"``
    ``fn(*series) -> Series``: pandas Series in, one Series (or list/array) of the same
    length out, called once per batch in Spark and once per ``get_features`` call online.

Inputs are normalised the same way in both places: a timestamp arrives as an aware UTC
:class:`~datetime.datetime` (a naive one is read as UTC); a pandas input Series is built
with Arrow from the Python values, typed with the feature's Spark type for looked-up
and on-demand features and inferred from the values for request fields.

Results are checked, never cast silently: a ``double`` accepts ints and floats; ``int``
and ``bigint`` integers in range (not bools, not floats); ``string`` a str; ``boolean`` a
bool; ``date`` a date; ``timestamp`` a datetime (naive = UTC). ``None`` (and ``pd.NA``,
``pd.NaT``) is null for every type; NaN stays NaN for a double.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from seeknal_spark.definitions.fingerprint import transform_hash
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ConfigurationError, MissingColumnError, OnDemandFeatureError

__all__ = [
    "MODES",
    "OUTPUT_TYPES",
    "OnDemandFeature",
    "arrow_type",
    "compute",
    "order_on_demand",
]

#: Output types an on-demand feature may declare (Spark type names), with aliases.
OUTPUT_TYPES: Mapping[str, str] = {
    "double": "double",
    "bigint": "bigint",
    "long": "bigint",
    "int": "int",
    "integer": "int",
    "string": "string",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}

#: How the function is called: per row with Python values, or per batch with Series.
MODES = ("scalar", "pandas")

_ARROW: Mapping[str, pa.DataType] = {
    "double": pa.float64(),
    "float": pa.float32(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}
_RANGES = {"bigint": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}
_SAMPLE_ROWS = 3


def arrow_type(spark_type: str) -> pa.DataType | None:
    """The Arrow type of a simple Spark type name (None for others: inferred)."""
    return _ARROW.get(spark_type)


@dataclass(frozen=True, eq=False)
class OnDemandFeature:
    """A feature computed at request time by one Python function, in training and serving.

    Parameters
    ----------
    name:
        The feature's name (letters, digits, underscores).
    inputs:
        Names of its inputs, in the order ``fn`` takes them: request fields (spine
        columns in training), looked-up features (output names) or other on-demand
        features.
    output_type:
        Spark type of the result: ``double``, ``bigint``, ``int``, ``string``,
        ``boolean``, ``date`` or ``timestamp``.
    fn:
        A function of the inputs (a ``def`` or a lambda); see the module docstring for
        the two forms.
    mode:
        ``"scalar"`` (one row of Python values) or ``"pandas"`` (Series in, Series out).
    description:
        Free text, recorded in the feature schema.

    Raises
    ------
    ConfigurationError
        Naming the feature: an invalid name, no or repeated inputs, an unknown output
        type or mode, or a function that cannot take the inputs.

    Examples
    --------
    >>> ratio = OnDemandFeature("amount_vs_avg", ["amount", "avg_amount"], "double",
    ...                         lambda amount, avg_amount: amount / max(avg_amount, 1.0))
    >>> compute([ratio], {"amount": [120.0, 5.0], "avg_amount": [60.0, 0.5]}, 2)
    {'amount_vs_avg': [2.0, 5.0]}
    >>> ratio.describe()["inputs"]
    ['amount', 'avg_amount']
    """

    name: str
    inputs: Sequence[str]
    output_type: str
    fn: Callable[..., Any]
    mode: str = "scalar"
    description: str = ""
    _hash: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        what = f"on-demand feature {self.name!r}"
        object.__setattr__(self, "name", validate_name(self.name, "on-demand feature"))
        if isinstance(self.inputs, str) or not isinstance(self.inputs, Sequence):
            raise ConfigurationError(f"{what}: inputs must be a list of names, got {self.inputs!r}")
        inputs = tuple(validate_name(i, f"input of {what}") for i in self.inputs)
        if not inputs:
            raise ConfigurationError(f"{what} has no inputs: name the fields it reads")
        repeated = sorted({i for i in inputs if inputs.count(i) > 1})
        if repeated:
            raise ConfigurationError(f"{what} names input(s) {repeated} more than once")
        if self.name in inputs:
            raise ConfigurationError(f"{what} takes itself as an input")
        object.__setattr__(self, "inputs", inputs)
        dtype = OUTPUT_TYPES.get(str(self.output_type).strip().lower())
        if dtype is None:
            raise ConfigurationError(
                f"{what}: output_type {self.output_type!r} is not supported; use one of "
                f"{sorted(set(OUTPUT_TYPES.values()))}"
            )
        object.__setattr__(self, "output_type", dtype)
        if self.mode not in MODES:
            raise ConfigurationError(f"{what}: mode {self.mode!r} is not one of {list(MODES)}")
        if not callable(self.fn):
            raise ConfigurationError(f"{what}: fn must be a function, got {self.fn!r}")
        try:
            inspect.signature(self.fn).bind(*inputs)
        except TypeError as exc:
            raise ConfigurationError(
                f"{what}: fn cannot be called with its {len(inputs)} input(s) {list(inputs)} "
                f"({exc}); take them as positional parameters, in that order"
            ) from None
        except ValueError:  # builtins without a signature: checked when called
            pass
        object.__setattr__(self, "_hash", transform_hash(self.fn))

    @property
    def code_hash(self) -> str:
        """SHA-256 of the function's logic, by the transform-hash rule
        (:func:`~seeknal_spark.definitions.fingerprint.transform_hash`)."""
        return self._hash

    def describe(self) -> dict[str, Any]:
        """Name, inputs, output type, mode and code hash: the feature's identity."""
        return {
            "name": self.name,
            "inputs": list(self.inputs),
            "output_type": self.output_type,
            "mode": self.mode,
            "code_hash": self.code_hash,
        }

    def __repr__(self) -> str:
        return (
            f"OnDemandFeature({self.name!r}, inputs={list(self.inputs)}, "
            f"output_type={self.output_type!r}, mode={self.mode!r})"
        )


def order_on_demand(features: Sequence[OnDemandFeature]) -> list[OnDemandFeature]:
    """``features`` in an order where every on-demand input is computed before its use.

    Raises
    ------
    ConfigurationError
        Two features share a name, or some depend on each other in a cycle (named).
    """
    by_name: dict[str, OnDemandFeature] = {}
    for feature in features:
        if not isinstance(feature, OnDemandFeature):
            raise TypeError(f"{feature!r} is not an OnDemandFeature")
        if feature.name in by_name:
            raise ConfigurationError(f"two on-demand features are named {feature.name!r}")
        by_name[feature.name] = feature
    ordered: list[OnDemandFeature] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise ConfigurationError(
                f"on-demand features depend on each other in a cycle: {' -> '.join(cycle)}"
            )
        state[name] = 1
        for dep in by_name[name].inputs:
            if dep in by_name:
                visit(dep, [*path, name])
        state[name] = 2
        ordered.append(by_name[name])

    for feature in features:
        visit(feature.name, [])
    return ordered


def compute(
    features: Sequence[OnDemandFeature],
    columns: Mapping[str, Sequence[Any]],
    n: int,
    types: Mapping[str, str] | None = None,
) -> dict[str, list[Any]]:
    """Evaluate on-demand features (in dependency order) over ``n`` rows of ``columns``.

    Parameters
    ----------
    features:
        Ordered by :func:`order_on_demand`.
    columns:
        Input name -> ``n`` Python values (request fields and looked-up features).
    n:
        The number of rows.
    types:
        Spark type names of typed inputs (looked-up features); untyped inputs (request
        fields) get the Arrow type inferred from their values in the pandas form.

    Returns
    -------
    dict
        Feature name -> ``n`` checked values.

    Raises
    ------
    MissingColumnError
        An input is not among ``columns`` (nor computed before).
    OnDemandFeatureError
        A function raised, returned the wrong number of values or a wrong type; the
        message names the feature and the offending input row (a sample for the pandas
        form).
    """
    known: dict[str, Sequence[Any]] = dict(columns)
    typed = dict(types or {})
    out: dict[str, list[Any]] = {}
    normalised: dict[str, list[Any]] = {}
    for feature in features:
        args = []
        for name in feature.inputs:
            if name not in normalised:
                if name not in known:
                    raise MissingColumnError(
                        f"on-demand feature {feature.name!r} needs input {name!r}, which is "
                        "not a request field (spine column), a looked-up feature or an "
                        "on-demand feature: pass it with the request"
                    )
                normalised[name] = [_normalise(v) for v in known[name]]
            args.append(normalised[name])
        if feature.mode == "scalar":
            values = _scalar(feature, args, n)
        else:
            values = _vectorised(feature, args, n, [typed.get(i) for i in feature.inputs])
        out[feature.name] = values
        known[feature.name] = values
        normalised[feature.name] = values
        typed[feature.name] = feature.output_type
    return out


def _normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    return value


def _scalar(feature: OnDemandFeature, args: list[list[Any]], n: int) -> list[Any]:
    fn, dtype = feature.fn, feature.output_type
    out = []
    for i in range(n):
        row = [a[i] for a in args]
        try:
            result = fn(*row)
        except Exception as exc:
            raise OnDemandFeatureError(
                f"on-demand feature {feature.name!r} raised {type(exc).__name__}: {exc} on "
                f"input row {_row(feature, row)}"
            ) from exc
        out.append(_check(feature, dtype, result, row))
    return out


def _vectorised(
    feature: OnDemandFeature, args: list[list[Any]], n: int, types: list[str | None]
) -> list[Any]:
    series = [
        pa.array(a, type=None if t is None else arrow_type(t), from_pandas=True).to_pandas()
        for a, t in zip(args, types, strict=True)
    ]
    try:
        result = feature.fn(*series)
    except Exception as exc:
        raise OnDemandFeatureError(
            f"on-demand feature {feature.name!r} raised {type(exc).__name__}: {exc} on a "
            f"batch of {n} rows, e.g. {_sample(feature, args, n)}"
        ) from exc
    tolist = getattr(result, "tolist", None)
    values = tolist() if callable(tolist) else result
    if not isinstance(values, list) or len(values) != n:
        size = len(values) if hasattr(values, "__len__") else type(values).__name__
        raise OnDemandFeatureError(
            f"on-demand feature {feature.name!r} (mode='pandas') returned {size} values for "
            f"{n} rows: return one Series value per input row"
        )
    dtype = feature.output_type
    return [_check(feature, dtype, v, args, i) for i, v in enumerate(values)]


def _row(feature: OnDemandFeature, row: Sequence[Any]) -> str:
    return repr(dict(zip(feature.inputs, row, strict=True)))


def _sample(feature: OnDemandFeature, args: list[list[Any]], n: int) -> str:
    rows = [_row(feature, [a[i] for a in args]) for i in range(min(n, _SAMPLE_ROWS))]
    return "; ".join(rows)


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    kind = type(value).__name__
    return kind in ("NAType", "NaTType")


def _check(
    feature: OnDemandFeature, dtype: str, value: Any, row: Sequence[Any], index: int = -1
) -> Any:
    """``value`` as the Python value of ``dtype``, or an error (never a lossy cast).

    ``row`` is the input row (``index`` < 0) or the input columns (row ``index``), used
    only to name the offending inputs in an error.
    """
    if _is_null(value):
        return None
    ok = _coerce(dtype, value)
    if ok is not _MISSING:
        return ok
    inputs = _row(feature, row if index < 0 else [a[index] for a in row])
    if isinstance(value, numbers.Integral) and dtype in _RANGES and not _is_bool(value):
        raise OnDemandFeatureError(
            f"on-demand feature {feature.name!r} returned {value!r}, out of range for "
            f"{dtype}, on input row {inputs}: declare output_type='bigint' or clip it"
        )
    hint = " (a float NaN is not null here: return None)" if _is_nan(value) else ""
    raise OnDemandFeatureError(
        f"on-demand feature {feature.name!r} returned {value!r} of type "
        f"{type(value).__name__}, not {dtype}{hint}, on input row {inputs}: return a "
        f"{dtype} (nothing is cast silently) or change output_type"
    )


def _coerce(dtype: str, value: Any) -> Any:
    if dtype == "double":
        if isinstance(value, numbers.Real) and not _is_bool(value):
            return float(value)
    elif dtype in _RANGES:
        if isinstance(value, numbers.Integral) and not _is_bool(value):
            low, high = _RANGES[dtype]
            if low <= int(value) <= high:
                return int(value)
    elif dtype == "string":
        if isinstance(value, str):
            return str(value)
    elif dtype == "boolean":
        if _is_bool(value):
            return bool(value)
    elif dtype == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
    elif dtype == "timestamp" and isinstance(value, datetime):
        to_py = getattr(value, "to_pydatetime", None)
        return _normalise(to_py() if callable(to_py) else value)
    return _MISSING


class _Missing:
    pass


_MISSING = _Missing()


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
