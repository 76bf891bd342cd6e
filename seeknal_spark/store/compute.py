"""Running a feature group's transform: its inputs, the call, and the checks of its output.

Functions of plain arguments (the group's name, keys and columns), used by
:class:`~seeknal_spark.store.feature_group.FeatureGroup`; nothing here writes.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Union

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DataType

from seeknal_spark._timestamps import is_time_type
from seeknal_spark.definitions.feature import Feature
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.definitions.types import parse_type
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    MissingColumnError,
    NullValueError,
    SchemaError,
    SeeknalError,
    TransformError,
)
from seeknal_spark.store.delta_protocol import WRITE_TIME_COL
from seeknal_spark.store.inputs import read_source

__all__ = [
    "NULL_MARKER",
    "InputSource",
    "Transform",
    "check_output",
    "first_line",
    "run_transform",
    "transform_failure",
    "write_failure",
]

InputSource = Union[DataFrame, str, Callable[[SparkSession], DataFrame]]
Transform = Union[str, Callable[..., DataFrame]]

_SQL_PARAM = re.compile(r":(window_start|window_end)\b")


def first_line(exc: BaseException) -> str:
    """The first line of a Spark error, without its SQLSTATE and plan."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(" SQLSTATE:", 1)[0].rstrip(" ;")


def transform_failure(group: str, exc: BaseException) -> TransformError | None:
    """A :class:`TransformError` naming ``group`` when ``exc`` is user code failing in a task."""
    text = f"{type(exc).__name__}: {exc}"
    if "PythonException" not in text and "PYTHON_EXCEPTION" not in text:
        return None
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    cause = next((ln for ln in reversed(lines) if "Error" in ln or "Exception" in ln), "")
    return TransformError(
        f"feature group {group!r}: the transform failed while Spark ran it: {cause or lines[-1]}"
        " (fix the transform or its UDFs; nothing was written)"
    )


#: Marks the error a write job raises on a null key or event time (see FeatureGroup.write).
NULL_MARKER = "SEEKNAL_NULL_VALUE"

_MERGE_FIELDS = re.compile(r"DELTA_FAILED_TO_MERGE_FIELDS\]\s*Failed to merge fields '([^']+)'")


def write_failure(group: str, version: str, exc: BaseException) -> SeeknalError | None:
    """The typed error of a failed write job (``None`` when it is not one a user caused):
    a null key or event time, the transform failing in a task, or a column whose type
    differs from the stored table's."""
    text = str(exc)
    if NULL_MARKER in text:
        detail = text.split(NULL_MARKER, 1)[1].split("\n", 1)[0]
        detail = detail.split(" SQLSTATE", 1)[0].strip(" :")
        return NullValueError(
            f"feature group {group!r}: {detail}; filter or fill those rows in the "
            "transform. Nothing was written."
        )
    failure = transform_failure(group, exc)
    if failure is not None:
        return failure
    clash = _MERGE_FIELDS.search(text)
    if clash is not None:
        return ColumnTypeError(
            f"feature group {group!r} version {version!r}: column {clash.group(1)!r} of the "
            f"transform's output has another type than in the stored table "
            f"({first_line(exc)}); cast it in the transform, or write to a new version. "
            "Nothing was written."
        )
    return None


def resolve_input(
    spark: SparkSession,
    group: str,
    input_name: str,
    source: InputSource,
    window_start: datetime,
    window_end: datetime | None,
) -> DataFrame:
    """The DataFrame of one named input (paths and tables through the one input policy).

    A function source is called with the session and, when it declares them (by name,
    as a transform does), ``window_start`` and ``window_end``: the write's window as UTC
    datetimes (``window_end`` None when open-ended), so it can read only the partitions
    the window needs (a partitioned folder given as a path is listed whole).
    """
    if isinstance(source, DataFrame):
        return source
    if callable(source):
        frame = source(spark, **_window_arguments(source, window_start, window_end))
        if not isinstance(frame, DataFrame):
            raise TypeError(
                f"feature group {group!r}: input {input_name!r} function returned "
                f"{type(frame).__name__}, not a DataFrame"
            )
        return frame
    if isinstance(source, str):
        return read_source(spark, source, what=f"feature group {group!r} input {input_name!r}")
    raise TypeError(
        f"feature group {group!r}: input {input_name!r} must be a DataFrame, a table "
        f"name, a path or a function of the SparkSession, got {type(source).__name__}"
    )


def _window_arguments(
    source: Callable[..., DataFrame],
    window_start: datetime | None,
    window_end: datetime | None,
) -> dict[str, datetime | None]:
    """The window arguments an input function declares (none for ``f(spark)``)."""
    try:
        params = inspect.signature(source).parameters
    except (TypeError, ValueError):  # a builtin or C callable: called with the session alone
        return {}
    wanted = {"window_start": window_start, "window_end": window_end}
    return {name: value for name, value in wanted.items() if name in params}


def run_transform(
    spark: SparkSession,
    group: str,
    transform: Transform,
    inputs: Mapping[str, InputSource],
    window_start: datetime,
    window_end: datetime | None,
) -> DataFrame:
    """Call the transform with its inputs (and the window, when it asks for it)."""
    frames = {
        n: resolve_input(spark, group, n, s, window_start, window_end) for n, s in inputs.items()
    }
    if isinstance(transform, str):
        args: dict[str, Any] = {}
        for param in set(_SQL_PARAM.findall(transform)):
            value = window_start if param == "window_start" else window_end
            if value is None:
                raise ConfigurationError(
                    f"feature group {group!r}: the SQL uses :{param} but the write "
                    "has no feature_end_time; pass one"
                )
            args[param] = value
        try:
            return spark.sql(transform, args=args or None, **frames)
        except Exception as exc:
            raise ConfigurationError(
                f"feature group {group!r}: the SQL transform failed to analyse "
                f"(inputs available as {{{', '.join(frames)}}}): {first_line(exc)}"
            ) from exc
    params = inspect.signature(transform).parameters
    extra: dict[str, Any] = {
        "spark": spark,
        "window_start": window_start,
        "window_end": window_end,
    }
    kwargs: dict[str, Any] = dict(frames)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key, value in extra.items():
        if key in params or (accepts_any and key not in frames):
            kwargs.setdefault(key, value)
    missing = [
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name not in kwargs
    ]
    if missing:
        raise ConfigurationError(
            f"feature group {group!r}: transform needs {missing} but the inputs are "
            f"{sorted(frames)}; add them to inputs={{...}}"
        )
    if not accepts_any:
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    try:
        result = transform(**kwargs)
    except AnalysisException as exc:  # e.g. a column the inputs do not have
        raise TransformError(
            f"feature group {group!r}: the transform does not fit its inputs: "
            f"{first_line(exc)} (fix the transform or its inputs; nothing was written)"
        ) from exc
    if not isinstance(result, DataFrame):
        raise TypeError(
            f"feature group {group!r}: transform returned {type(result).__name__}, "
            "not a Spark DataFrame"
        )
    return result


def check_output(
    frame: DataFrame,
    group: str,
    required: Sequence[str],
    time_columns: Sequence[str],
    declared: Sequence[Feature] | None,
) -> list[Feature]:
    """The features of a transform's output, after checking its columns and types.

    Raises
    ------
    MissingColumnError, ColumnTypeError, SchemaError
        A required or declared column is absent, has a wrong type, or repeats.
    """
    schema = frame.schema
    names = schema.fieldNames()
    lowered = [n.lower() for n in names]
    duplicates = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if duplicates:
        raise SchemaError(
            f"feature group {group!r}: the transform outputs column(s) {duplicates} "
            "more than once; alias them to distinct names"
        )
    for column in required:
        if column not in names:
            raise MissingColumnError(
                f"feature group {group!r}: the transform output has no column "
                f"{column!r} (columns: {names}); select it in the transform"
            )
    for column in time_columns:
        if not is_time_type(schema[column].dataType):
            raise ColumnTypeError(
                f"feature group {group!r}: column {column!r} is "
                f"{schema[column].dataType.simpleString()}; it must be a timestamp or date "
                "(cast it with to_timestamp)"
            )
    if declared is None:
        skip = set(required) | {WRITE_TIME_COL}
        features = [Feature(f.name, f.dataType) for f in schema.fields if f.name not in skip]
        for feature in features:
            validate_name(feature.name, "feature")
        if not features:
            raise SchemaError(
                f"feature group {group!r}: the transform outputs no feature columns "
                "besides keys and event time"
            )
        return features
    for feature in declared:
        if feature.name not in names:
            raise MissingColumnError(
                f"feature group {group!r}: declared feature {feature.name!r} is not in "
                f"the transform output (columns: {names}); compute it or remove it from "
                "features"
            )
        actual = schema[feature.name].dataType
        if actual != feature.dtype:
            raise ColumnTypeError(
                f"feature group {group!r}: feature {feature.name!r} is "
                f"{actual.simpleString()} but declared {feature.dtype.simpleString()}; cast "
                "it in the transform or change the declaration"
            )
    return list(declared)


def declared_features(
    group: str,
    features: Mapping[str, DataType | str] | Sequence[Feature | tuple[str, DataType | str]],
) -> list[Feature]:
    """Parse a ``features=`` declaration (mapping, Features or (name, type) pairs)."""
    items: list[tuple[str, DataType | str]]
    if isinstance(features, Mapping):
        items = list(features.items())
    else:
        items = [(f.name, f.dtype) if isinstance(f, Feature) else (f[0], f[1]) for f in features]
    out = []
    seen: set[str] = set()
    for name, dtype in items:
        validate_name(name, "feature")
        if name.lower() in seen:
            raise ConfigurationError(f"feature group {group!r}: feature {name!r} is declared twice")
        seen.add(name.lower())
        try:
            parsed = parse_type(dtype)
        except ValueError as exc:
            raise ConfigurationError(f"feature group {group!r}: feature {name!r}: {exc}") from exc
        out.append(Feature(name, parsed))
    if not out:
        raise ConfigurationError(f"feature group {group!r}: features is empty; omit it to infer")
    return out
