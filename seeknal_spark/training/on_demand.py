"""On-demand features in a training set: the one evaluator, run inside Spark.

:func:`attach_on_demand` appends the on-demand columns to the joined training rows with
``mapInArrow``: each Arrow batch's input columns become Python values, go through
:func:`seeknal_spark.definitions.on_demand.compute` (the function ``get_features`` runs
at serving) and come back as Arrow columns of the declared types; the other columns pass
through untouched. The scalar form is called row by row inside each batch, the pandas
form once per batch: no row-at-a-time Python UDF.

A function that fails makes the Spark job fail with a Python exception whose message is
the :class:`~seeknal_spark.errors.OnDemandFeatureError` naming the feature and the input
row (or a sample); :func:`on_demand_failure` turns it back into that error where the
library runs the job itself (``check_values``, the application layer's training sets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.types import DataType, StructField, StructType

from seeknal_spark._timestamps import arrow_utc
from seeknal_spark.definitions.on_demand import OnDemandFeature, arrow_type, compute
from seeknal_spark.errors import ConfigurationError, MissingColumnError, OnDemandFeatureError

__all__ = ["attach_on_demand", "check_on_demand", "on_demand_failure", "spark_type"]

_FAILURE = re.compile(r"OnDemandFeatureError: (.*)")


def spark_type(name: str) -> DataType:
    """The Spark type ``name`` (one of the on-demand output types)."""
    from pyspark.sql.types import (
        BooleanType,
        DateType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        TimestampType,
    )

    types = {
        "double": DoubleType(),
        "bigint": LongType(),
        "int": IntegerType(),
        "string": StringType(),
        "boolean": BooleanType(),
        "date": DateType(),
        "timestamp": TimestampType(),
    }
    return types[name]


def check_on_demand(
    ordered: Sequence[OnDemandFeature], columns: Sequence[str], looked_up: Sequence[str]
) -> None:
    """Before any Spark job: every input exists and no on-demand name clashes.

    ``columns`` are the training set's columns (spine columns and ``looked_up``).

    Raises
    ------
    ConfigurationError
        An on-demand feature is named like a spine column or a looked-up feature.
    MissingColumnError
        An input is neither a spine column, a looked-up feature nor an on-demand feature.
    """
    present = set(columns)
    names = {f.name for f in ordered}
    for feature in ordered:
        if feature.name in present:
            what = "looked-up feature" if feature.name in set(looked_up) else "spine column"
            raise ConfigurationError(
                f"on-demand feature {feature.name!r} has the name of a {what}: rename it "
                "(or give the lookup a prefix=)"
            )
        for name in feature.inputs:
            if name not in present and name not in names:
                spine = [c for c in columns if c not in set(looked_up)]
                raise MissingColumnError(
                    f"on-demand feature {feature.name!r} needs input {name!r}, which is not "
                    f"a spine column ({spine}), a looked-up feature ({list(looked_up)}) or an "
                    "on-demand feature: add it to the spine (a request field) or fix the name"
                )


def attach_on_demand(
    df: DataFrame, ordered: Sequence[OnDemandFeature], types: Mapping[str, str]
) -> DataFrame:
    """``df`` with one column per on-demand feature appended (in ``ordered`` order).

    Parameters
    ----------
    df:
        The joined training rows: spine columns and looked-up features.
    ordered:
        The features, in dependency order
        (:func:`~seeknal_spark.definitions.on_demand.order_on_demand`).
    types:
        Spark type names of the looked-up features (typed pandas inputs); spine columns
        are request fields, typed from their values as at serving.
    """
    if not ordered:
        return df
    check_on_demand(ordered, df.columns, list(types))
    computed = {f.name for f in ordered}
    needed = sorted({i for f in ordered for i in f.inputs if i not in computed})
    features = list(ordered)
    typed = {k: v for k, v in types.items() if k in set(needed)}
    out_types = [arrow_type(f.output_type) for f in features]

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            columns = {
                name: batch.column(batch.schema.get_field_index(name)).to_pylist()
                for name in needed
            }
            values = compute(features, columns, batch.num_rows, typed)
            arrays = [
                pa.array(values[f.name], type=t) for f, t in zip(features, out_types, strict=True)
            ]
            table = pa.Table.from_batches([batch])
            for feature, array in zip(features, arrays, strict=True):
                table = table.append_column(feature.name, array)
            yield from arrow_utc(table).to_batches()

    fields = [StructField(f.name, spark_type(f.output_type), True) for f in features]
    return df.mapInArrow(run, StructType([*df.schema.fields, *fields]))


def on_demand_failure(exc: BaseException) -> OnDemandFeatureError | None:
    """The :class:`OnDemandFeatureError` a failed Spark job carries, or None."""
    if isinstance(exc, OnDemandFeatureError):
        return exc
    found = _FAILURE.findall(str(exc))
    if not found:
        return None
    return OnDemandFeatureError(found[-1].strip() + " (raised while Spark built the training set)")
