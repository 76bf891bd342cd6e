"""The feature schema that travels with a model.

A :class:`FeatureSchema` records what a model was trained on: the ordered feature names
and Spark types, for each lookup the feature group, its version, TTL, the Delta table
version read and the transform hash, and for each on-demand feature its inputs, output
type, mode and code hash. Saved as JSON next to the model, it is what parity
checks compare an online table against, and the order every model matrix is built in.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pyspark.sql.types import DataType

from seeknal_spark.definitions.on_demand import OnDemandFeature
from seeknal_spark.errors import ConfigurationError, MissingColumnError
from seeknal_spark.training.lookup import FeatureLookup

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FeatureSchema", "LookupSchema", "OnDemandSchema", "SchemaFeature", "TrainingSet"]

FORMAT_VERSION = 1


class TrainingSet(Protocol):
    """What a schema is built from: a
    :class:`~seeknal_spark.training.historical.HistoricalFeatures` (no import of it here,
    so the schema module stays below it)."""

    @property
    def timestamp_col(self) -> str:
        """The spine's time column."""
        ...

    def manifest_dict(self) -> dict[str, Any]:
        """What the training set read (or would read now)."""
        ...

    def output_features(self) -> list[tuple[str, DataType, FeatureLookup]]:
        """``(output name, Spark type, lookup)`` of every looked-up feature, in order."""
        ...

    @property
    def on_demand(self) -> list[OnDemandFeature]:
        """The on-demand features, in output order."""
        ...


@dataclass(frozen=True)
class SchemaFeature:
    """One model input: its (output) name, Spark type, and where it comes from
    (``feature_group`` and ``version`` are empty for an on-demand feature)."""

    name: str
    dtype: str
    feature_group: str
    version: str
    source_feature: str


@dataclass(frozen=True)
class LookupSchema:
    """One lookup as it was read for training."""

    feature_group: str
    version: str
    join_keys: tuple[str, ...]
    ttl_seconds: float | None
    delta_version: int | None
    transform_hash: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class OnDemandSchema:
    """One on-demand feature as it was computed for training: its identity."""

    name: str
    inputs: tuple[str, ...]
    output_type: str
    mode: str
    code_hash: str

    @classmethod
    def of(cls, feature: OnDemandFeature | Mapping[str, Any]) -> OnDemandSchema:
        """From a definition or its ``describe()`` dict."""
        data = feature.describe() if isinstance(feature, OnDemandFeature) else feature
        return cls(
            name=str(data["name"]),
            inputs=tuple(data["inputs"]),
            output_type=str(data["output_type"]),
            mode=str(data["mode"]),
            code_hash=str(data["code_hash"]),
        )

    def differences(self, other: OnDemandSchema) -> list[str]:
        """What differs from ``other`` (code, inputs, output type, mode), as phrases."""
        out = []
        if other.code_hash != self.code_hash:
            out.append(f"code hash {self.code_hash[:12]} -> {other.code_hash[:12]}")
        if other.inputs != self.inputs:
            out.append(f"inputs {list(self.inputs)} -> {list(other.inputs)}")
        if other.output_type != self.output_type:
            out.append(f"output type {self.output_type} -> {other.output_type}")
        if other.mode != self.mode:
            out.append(f"mode {self.mode} -> {other.mode}")
        return out


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered model inputs and their provenance. See the module docstring.

    Examples
    --------
    Usually ``hist.feature_schema()``; saved with ``schema.save(path)`` next to the model
    and read back with ``FeatureSchema.load(path)``:

    >>> schema = FeatureSchema((SchemaFeature("c_total", "double", "spend", "v1", "total"),), ())
    >>> FeatureSchema.from_json(schema.to_json()) == schema
    True
    >>> schema.matrix([{"other": 1, "c_total": 2.0}])
    [[2.0]]
    """

    features: tuple[SchemaFeature, ...]
    lookups: tuple[LookupSchema, ...]
    timestamp_col: str = "prediction_time"
    on_demand: tuple[OnDemandSchema, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"feature schema repeats a feature name: {names}")

    @property
    def feature_names(self) -> list[str]:
        """Feature names in model order."""
        return [f.name for f in self.features]

    @property
    def types(self) -> dict[str, str]:
        """Feature name -> Spark type string."""
        return {f.name: f.dtype for f in self.features}

    # -- building ----------------------------------------------------------------------
    @classmethod
    def from_historical(cls, hist: TrainingSet) -> FeatureSchema:
        """The schema of the training set ``hist`` built last (or would build now)."""
        manifest = hist.manifest_dict()
        by_group = {(m["feature_group"], m["version"]): m for m in manifest["lookups"]}
        features = []
        lookups: dict[tuple[str, str], LookupSchema] = {}
        for name, dtype, lookup in hist.output_features():
            group = lookup.feature_group.name
            version = lookup.resolved_version()
            entry = by_group.get((group, version), {})
            features.append(
                SchemaFeature(
                    name=name,
                    dtype=dtype.simpleString(),
                    feature_group=group,
                    version=version,
                    source_feature=lookup.source_feature(name),
                )
            )
            if (group, version) not in lookups:
                ttl = lookup.effective_ttl()
                lookups[(group, version)] = LookupSchema(
                    feature_group=group,
                    version=version,
                    join_keys=tuple(lookup.feature_group.entity.join_keys),
                    ttl_seconds=None if ttl is None else ttl.total_seconds(),
                    delta_version=entry.get("delta_version"),
                    transform_hash=str(entry.get("transform_hash", "")),
                    features=(),
                )
            current = lookups[(group, version)]
            lookups[(group, version)] = LookupSchema(
                **{**asdict(current), "features": (*current.features, name)}
            )
        on_demand = tuple(OnDemandSchema.of(f) for f in hist.on_demand)
        for od in on_demand:
            features.append(SchemaFeature(od.name, od.output_type, "", "", od.name))
        return cls(tuple(features), tuple(lookups.values()), hist.timestamp_col, on_demand)

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "timestamp_col": self.timestamp_col,
            "features": [asdict(f) for f in self.features],
            "lookups": [
                {**asdict(lk), "join_keys": list(lk.join_keys), "features": list(lk.features)}
                for lk in self.lookups
            ],
            "on_demand": [{**asdict(od), "inputs": list(od.inputs)} for od in self.on_demand],
        }

    def to_json(self) -> str:
        """Stable JSON: the same schema always gives the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        if data.get("format_version") != FORMAT_VERSION:
            raise ConfigurationError(
                f"feature schema format {data.get('format_version')!r} is not supported "
                f"(expected {FORMAT_VERSION}); re-save it with this seeknal-spark version"
            )
        return cls(
            features=tuple(SchemaFeature(**f) for f in data["features"]),
            lookups=tuple(
                LookupSchema(
                    **{**lk, "join_keys": tuple(lk["join_keys"]), "features": tuple(lk["features"])}
                )
                for lk in data["lookups"]
            ),
            timestamp_col=data.get("timestamp_col", "prediction_time"),
            on_demand=tuple(OnDemandSchema.of(od) for od in data.get("on_demand", [])),
        )

    @classmethod
    def from_json(cls, text: str) -> FeatureSchema:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the schema as JSON (atomically: a temp file renamed into place)."""
        target = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(target))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".schema-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FeatureSchema:
        """Read a schema written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as handle:
                return cls.from_json(handle.read())
        except FileNotFoundError:
            raise ConfigurationError(
                f"no feature schema at {os.fspath(path)!r}: save one with schema.save(path)"
            ) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"{os.fspath(path)!r} is not a seeknal feature schema: {exc}"
            ) from exc

    # -- model matrices -----------------------------------------------------------------
    def matrix(
        self, rows: pd.DataFrame | Iterable[Mapping[str, Any]] | Mapping[str, Any]
    ) -> list[list[Any]]:
        """Rows of feature values in the schema's order, whatever order they came in.

        ``rows`` is a pandas DataFrame, an iterable of mappings (e.g. what
        ``OnlineTable.get_features`` returns) or a single mapping.

        Raises
        ------
        MissingColumnError
            When a schema feature is absent from the rows.
        """
        names = self.feature_names
        columns = getattr(rows, "columns", None)
        if columns is not None:
            missing = [n for n in names if n not in set(columns)]
            if missing:
                raise MissingColumnError(
                    f"the rows lack schema feature(s) {missing}; select them before predicting"
                )
            frame: Any = rows
            return [list(r) for r in frame[names].itertuples(index=False, name=None)]
        items: Iterable[Mapping[str, Any]] = [rows] if isinstance(rows, Mapping) else rows  # type: ignore[assignment]
        out = []
        for row in items:
            missing = [n for n in names if n not in row]
            if missing:
                raise MissingColumnError(
                    f"a row lacks schema feature(s) {missing}; fetch them with "
                    "feature_names=schema.feature_names"
                )
            out.append([row[n] for n in names])
        return out

    def select(self, names: Sequence[str]) -> list[str]:
        """The given names reordered into schema order (unknown names raise)."""
        unknown = [n for n in names if n not in self.types]
        if unknown:
            raise MissingColumnError(
                f"{unknown} are not in the feature schema {self.feature_names}"
            )
        wanted = set(names)
        return [n for n in self.feature_names if n in wanted]
