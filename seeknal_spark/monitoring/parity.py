"""Training-serving parity: prove an online table serves what a model was trained on.

Two checks, meant to gate a deployment:

- :func:`validate_parity` compares a model's :class:`~seeknal_spark.training.schema.FeatureSchema`
  with an online table's metadata: every feature present with the same type, no extra
  features, the same feature-group versions and transform hashes, and every on-demand
  feature with the same code hash, inputs, output type and mode - as recorded with the
  snapshot and as attached to the table (the functions the serving process runs).
- :func:`check_values` compares, for a sample of keys, the values ``get_features``
  returns with what the point-in-time join gives for (key, export time) from the very
  Delta versions the export read; with ``requests=`` also the on-demand features, for
  a sample of request rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType

from seeknal_spark._timestamps import to_utc_datetime, utc_literal
from seeknal_spark.definitions.naming import quote_identifier
from seeknal_spark.errors import ConfigurationError, ParityError
from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures
from seeknal_spark.training.on_demand import on_demand_failure
from seeknal_spark.training.schema import OnDemandSchema

if TYPE_CHECKING:
    import pandas as pd

    from seeknal_spark.online.table import OnlineTable
    from seeknal_spark.training.schema import FeatureSchema

__all__ = ["ValueParityReport", "check_values", "validate_parity"]

logger = logging.getLogger(__name__)

#: Keys compared per lookup by :func:`check_values` when no ``sample`` is given.
DEFAULT_MAX_KEYS = 10_000

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def schema_problems(schema: FeatureSchema, metadata: Mapping[str, Any]) -> list[str]:
    """Every way an online table's metadata differs from a model's feature schema.

    The checks of :func:`validate_parity`, as sentences (empty when the table fits).

    Examples
    --------
    >>> from seeknal_spark.training.schema import FeatureSchema, LookupSchema, SchemaFeature
    >>> schema = FeatureSchema(
    ...     (SchemaFeature("spend", "double", "spend", "v1", "spend"),),
    ...     (LookupSchema("spend", "v1", ("customer_id",), None, 3, "abc", ("spend",)),),
    ... )
    >>> served = {"table": "churn", "features": {"spend": "bigint"},
    ...           "lookups": [{"feature_group": "spend", "version": "v2"}]}
    >>> for problem in schema_problems(schema, served):
    ...     print(problem.split(";")[0])
    type mismatch for feature 'spend': trained as double, served as bigint
    version mismatch for feature group 'spend': trained on 'v1', served from ['v2']
    """
    problems: list[str] = []
    served: dict[str, str] = dict(metadata.get("features", {}))
    table = metadata.get("table", "?")
    for feature in schema.features:
        if feature.name not in served:
            problems.append(
                f"missing feature {feature.name!r}: the model needs it but online table "
                f"{table!r} does not serve it"
            )
        elif served[feature.name] != feature.dtype:
            problems.append(
                f"type mismatch for feature {feature.name!r}: trained as {feature.dtype}, "
                f"served as {served[feature.name]}"
            )
    wanted = set(schema.feature_names)
    for name in served:
        if name not in wanted:
            problems.append(
                f"extra feature {name!r}: online table {table!r} serves it but the model was "
                "not trained on it"
            )
    online_lookups: dict[str, list[Mapping[str, Any]]] = {}
    for entry in metadata.get("lookups", []):
        online_lookups.setdefault(entry["feature_group"], []).append(entry)
    for lookup in schema.lookups:
        candidates = online_lookups.get(lookup.feature_group, [])
        if not candidates:
            problems.append(
                f"feature group {lookup.feature_group!r} (version {lookup.version!r}) is not "
                f"exported to online table {table!r}"
            )
            continue
        same = [c for c in candidates if c.get("version") == lookup.version]
        if not same:
            served_versions = sorted({str(c.get("version")) for c in candidates})
            problems.append(
                f"version mismatch for feature group {lookup.feature_group!r}: trained on "
                f"{lookup.version!r}, served from {served_versions}; re-export the trained "
                "version or retrain"
            )
            continue
        served_hash = same[0].get("transform_hash")
        if lookup.transform_hash and served_hash and served_hash != lookup.transform_hash:
            problems.append(
                f"transform hash changed for feature group {lookup.feature_group!r} version "
                f"{lookup.version!r}: trained with {lookup.transform_hash[:12]}, served from "
                f"{str(served_hash)[:12]}; the logic changed since training"
            )
    recorded = {str(od.get("name")): od for od in metadata.get("on_demand") or []}
    problems += on_demand_problems(schema, recorded, f"online table {table!r}")
    return problems


def on_demand_problems(schema: FeatureSchema, served: Mapping[str, Any], where: str) -> list[str]:
    """How the on-demand features ``served`` (name -> definition or ``describe()`` dict)
    differ from those the model was trained with; ``where`` names the serving side."""
    problems = []
    for trained in schema.on_demand:
        found = served.get(trained.name)
        if found is None:
            problems.append(
                f"on-demand feature {trained.name!r} is not computed by {where}: pass its "
                "definition (OnlineTable.open(..., on_demand=[...])) and re-export"
            )
            continue
        changes = trained.differences(OnDemandSchema.of(found))
        if changes:
            problems.append(
                f"on-demand feature {trained.name!r} changed between training and {where}: "
                + ", ".join(changes)
                + "; serve the definition the model was trained with, or retrain"
            )
    return problems


def table_problems(
    schema: FeatureSchema,
    online_table: OnlineTable,
    *,
    attached_as: str = "the functions given to the table",
    require_attached: bool = False,
) -> list[str]:
    """:func:`schema_problems` of the table's metadata, then how the on-demand functions
    attached to ``online_table`` (named ``attached_as`` in a problem) differ from the
    schema's; without ``require_attached``, a table with none attached is not compared."""
    problems = schema_problems(schema, online_table.metadata)
    if schema.on_demand and (require_attached or online_table.on_demand):
        attached = {f.name: f for f in online_table.on_demand}
        for line in on_demand_problems(schema, attached, attached_as):
            if line not in problems:
                problems.append(line)
    return problems


def validate_parity(schema: FeatureSchema, online_table: OnlineTable) -> None:
    """Raise :class:`ParityError` naming every problem, or return when the table fits.

    Checks names, types, feature-group versions and transform hashes, and the on-demand
    features both as recorded with the snapshot and as attached to ``online_table`` (the
    functions this process runs). Passing means the online table can serve this model.
    """
    problems = table_problems(schema, online_table)
    if problems:
        raise ParityError(
            f"online table {online_table.name!r} cannot serve this model "
            f"({len(problems)} problem(s)):\n- " + "\n- ".join(problems),
            problems,
        )
    logger.info("parity: online table %r fits the feature schema", online_table.name)


@dataclass
class ValueParityReport:
    """Result of :func:`check_values`.

    Attributes
    ----------
    keys_checked:
        How many entity keys were compared.
    mismatches:
        Feature -> number of keys whose online value differs from the offline one.
    examples:
        Feature -> up to ``max_examples`` ``(key, offline, online)`` triples.
    """

    table: str
    keys_checked: int
    features: list[str]
    mismatches: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[Any, Any, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.mismatches.values())

    @property
    def total_mismatches(self) -> int:
        return sum(self.mismatches.values())

    def raise_for_mismatches(self) -> None:
        """Raise :class:`ParityError` when any value differs."""
        if self.ok:
            return
        problems = [
            f"feature {name!r}: {count} of {self.keys_checked} keys differ, e.g. "
            + "; ".join(f"key {k}: offline {a!r} online {b!r}" for k, a, b in self.examples[name])
            for name, count in self.mismatches.items()
            if count
        ]
        raise ParityError(
            f"online table {self.table!r} serves values that differ from the point-in-time "
            "join:\n- " + "\n- ".join(problems),
            problems,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "keys_checked": self.keys_checked,
            "ok": self.ok,
            "mismatches": dict(self.mismatches),
            "examples": {k: [list(map(repr, e)) for e in v] for k, v in self.examples.items()},
        }


def values_equal(offline: Any, online: Any) -> bool:
    """Exact equality, with NaN equal to NaN and datetimes compared as UTC instants."""
    if offline is None or online is None:
        return offline is None and online is None
    if isinstance(offline, float) and isinstance(online, float):
        return (math.isnan(offline) and math.isnan(online)) or offline == online
    if isinstance(offline, datetime) and isinstance(online, datetime):
        return to_utc_datetime(offline) == to_utc_datetime(online)
    if isinstance(offline, date) and isinstance(online, date):
        return offline == online
    if isinstance(offline, (list, tuple)) and isinstance(online, (list, tuple)):
        return len(offline) == len(online) and all(
            values_equal(a, b) for a, b in zip(offline, online, strict=True)
        )
    if hasattr(offline, "asDict") and isinstance(online, Mapping):
        return values_equal(offline.asDict(recursive=True), online)
    if isinstance(offline, Mapping) and isinstance(online, Mapping):
        return offline.keys() == online.keys() and all(
            values_equal(offline[k], online[k]) for k in offline
        )
    return bool(offline == online)


def compare_rows(
    table: str,
    features: Sequence[str],
    keys: Sequence[Mapping[str, Any]],
    offline_rows: Sequence[Mapping[str, Any]],
    online_rows: Sequence[Mapping[str, Any]],
    *,
    max_examples: int = 5,
) -> ValueParityReport:
    """Compare offline and online rows key by key (same order) into a report."""
    report = ValueParityReport(table=table, keys_checked=len(keys), features=list(features))
    for name in features:
        report.mismatches[name] = 0
        report.examples[name] = []
    for key, offline, online in zip(keys, offline_rows, online_rows, strict=True):
        for name in features:
            if not values_equal(offline.get(name), online.get(name)):
                report.mismatches[name] += 1
                if len(report.examples[name]) < max_examples:
                    report.examples[name].append((dict(key), offline.get(name), online.get(name)))
    return report


def _offline_sample(
    hist: HistoricalFeatures,
    lookup: FeatureLookup,
    delta_version: int | None,
    as_of: datetime,
    limit: int,
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A deterministic sample of a lookup's keys and their point-in-time rows at ``as_of``."""
    group = lookup.feature_group
    version = lookup.resolved_version()
    join_keys = list(group.entity.join_keys)
    table = lookup.store.read_table(group.name, version, as_of_version=delta_version)
    sampled = (
        table.select(*join_keys)
        .distinct()
        .orderBy(F.xxhash64(*join_keys, F.lit(seed)), *join_keys)
        .limit(limit)
    )
    single = HistoricalFeatures(
        [lookup],
        hist.feature_start_time,
        timestamp_col=hist.timestamp_col,
        inclusive=hist.inclusive,
    )
    spine = sampled.withColumn(hist.timestamp_col, utc_literal(as_of))
    pinned = None if delta_version is None else {group.name: delta_version}
    names = [lookup.output_name(f) for f in lookup.features or ()]
    rows = _collect_instants(single.to_dataframe(spine, as_of=pinned).select(*join_keys, *names))
    keys = [{k: r[k] for k in join_keys} for r in rows]  # bounded by ``limit``
    return keys, [{n: r[n] for n in names} for r in rows]


def _collect_instants(df: DataFrame) -> list[dict[str, Any]]:
    """The (small) rows of ``df``, with ``timestamp`` columns as aware UTC datetimes.

    PySpark's ``collect`` turns a timestamp into a naive datetime in the driver Python's
    local zone, which the comparison would read as UTC (and which, in a repeated DST hour,
    no longer says which pass it was); reading ``unix_micros`` keeps the exact instant.
    """
    stamps = [f.name for f in df.schema.fields if isinstance(f.dataType, TimestampType)]
    columns = [
        F.unix_micros(F.col(quote_identifier(c))).alias(c)
        if c in stamps
        else F.col(quote_identifier(c))
        for c in df.columns
    ]
    out: list[dict[str, Any]] = []
    for row in df.select(*columns).collect():
        values = row.asDict()
        for name in stamps:
            if values[name] is not None:
                values[name] = _EPOCH + timedelta(microseconds=values[name])
        out.append(values)
    return out


def _on_demand_sample(
    online_table: OnlineTable,
    hist: HistoricalFeatures,
    requests: DataFrame | pd.DataFrame | Sequence[Mapping[str, Any]],
    metadata: Mapping[str, Any],
    limit: int,
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Offline and online on-demand values of a sample of request rows at the export."""
    spark = hist.lookups[0].store.spark
    ts_col = hist.timestamp_col
    frame: Any = requests
    if not isinstance(frame, DataFrame):
        import pandas as pd

        frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(list(frame))
        if ts_col in frame.columns:
            frame = frame.drop(columns=[ts_col])
        frame = spark.createDataFrame(frame)
    as_of = datetime.fromisoformat(str(metadata["as_of"]))
    columns = [c for c in frame.columns if c != ts_col]
    quoted = [F.col(quote_identifier(c)) for c in columns]
    rows = (
        frame.select(*quoted)
        .orderBy(F.xxhash64(*quoted, F.lit(seed)), *quoted)
        .limit(limit)
        .withColumn(ts_col, utc_literal(as_of))
    )
    single = HistoricalFeatures(
        hist.lookups,
        hist.feature_start_time,
        timestamp_col=ts_col,
        inclusive=hist.inclusive,
        on_demand=hist.on_demand,
    )
    pinned: Any = metadata.get("manifest") or {
        str(e["feature_group"]): e.get("delta_version") for e in metadata.get("lookups", [])
    }
    names = [f.name for f in hist.on_demand]
    try:
        offline = _collect_instants(single.to_dataframe(rows, as_of=pinned))
    except Exception as exc:
        failure = on_demand_failure(exc)
        if failure is None:
            raise
        raise failure from exc
    key_cols = list(
        dict.fromkeys(k for lk in hist.lookups for k in lk.feature_group.entity.join_keys)
    )
    keys = [{k: r[k] for k in key_cols} for r in offline]
    request_rows = [{c: r[c] for c in [*columns, ts_col]} for r in offline]
    logger.debug(
        "comparing on-demand features %s on %d request rows at %s", names, len(keys), as_of
    )
    served = (
        online_table.get_features(keys=keys, feature_names=names, request=request_rows)
        if keys
        else []
    )
    online = [{n: row.get(n) for n in names} for row in served]
    return keys, [{n: r[n] for n in names} for r in offline], online


def check_values(
    online_table: OnlineTable,
    hist: HistoricalFeatures,
    sample: int | None = None,
    *,
    requests: DataFrame | pd.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    seed: int = 7,
    max_examples: int = 5,
) -> ValueParityReport:
    """Compare served values with the point-in-time join, key by key.

    For every lookup of ``hist``, a deterministic sample of its entity keys (``sample``
    keys; None means all keys up to :data:`DEFAULT_MAX_KEYS`) is joined as of the
    table's export time, reading the exact Delta versions the export read; the same keys
    are fetched with ``get_features`` (one round trip) and every value is compared exactly
    (NaN equals NaN; timestamps as UTC instants).

    On-demand features of ``hist`` are compared on a deterministic sample (``sample``
    rows) of ``requests``: rows holding every lookup's join keys and the request fields
    (e.g. the training spine; its time column is replaced by the export time). Offline,
    each row is a spine row of ``hist.to_dataframe`` at the export's manifest (the
    on-demand columns computed in Spark); online, ``get_features(keys=rows,
    request=rows)`` computes them after the lookup.

    Returns
    -------
    ValueParityReport
        Mismatch counts per feature with examples; ``report.ok`` is True when all equal.

    Raises
    ------
    ConfigurationError
        ``hist`` has on-demand features and no ``requests`` were given.
    OnDemandFeatureError
        An on-demand function failed in the offline computation.
    """
    metadata = online_table.metadata
    as_of = datetime.fromisoformat(str(metadata["as_of"]))
    exported = {
        (str(e["feature_group"]), str(e["version"])): e.get("delta_version")
        for e in metadata.get("lookups", [])
    }
    limit = DEFAULT_MAX_KEYS if sample is None else sample
    if limit < 1:
        raise ValueError(f"sample must be a positive number of keys, got {sample!r}")
    keys: list[dict[str, Any]] = []
    features: list[str] = []
    offline_rows: list[Mapping[str, Any]] = []
    online_rows: list[Mapping[str, Any]] = []
    for lookup in hist.lookups:
        group, version = lookup.feature_group.name, lookup.resolved_version()
        if (group, version) not in exported:
            raise ParityError(
                f"online table {online_table.name!r} does not serve feature group {group!r} "
                f"version {version!r}: export it (hist.serve) before checking values",
                [f"feature group {group!r} version {version!r} not exported"],
            )
        names = [lookup.output_name(f) for f in lookup.features or ()]
        lk_keys, lk_offline = _offline_sample(
            hist, lookup, exported[(group, version)], as_of, limit, seed
        )
        served = online_table.get_features(keys=lk_keys, feature_names=names) if lk_keys else []
        for key, offline, online in zip(lk_keys, lk_offline, served, strict=True):
            keys.append(key)
            offline_rows.append(offline)
            online_rows.append({n: online.get(n) for n in names})
        features.extend(names)
    if hist.on_demand:
        if requests is None:
            raise ConfigurationError(
                f"{[f.name for f in hist.on_demand]} are on-demand features: give "
                "check_values requests= rows (join keys and request fields, e.g. the "
                "training spine) to compare them"
            )
        od_keys, od_offline, od_online = _on_demand_sample(
            online_table, hist, requests, metadata, limit, seed
        )
        keys += od_keys
        offline_rows += od_offline
        online_rows += od_online
        features.extend(f.name for f in hist.on_demand)
    report = compare_rows(
        online_table.name, features, keys, offline_rows, online_rows, max_examples=max_examples
    )
    logger.info(
        "value parity of %r: %d keys, %d mismatching values",
        online_table.name,
        report.keys_checked,
        report.total_mismatches,
    )
    return report
