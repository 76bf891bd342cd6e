"""Features and feature-group definitions: what a (group, version) is, as plain data.

A :class:`FeatureGroupDefinition` is what the registry stores and what a version's Delta
table carries as a table property; :meth:`FeatureGroupDefinition.definition_hash` covers
the parts that make a version's rows comparable (transform, features, keys, times). The
features of an event group (one with time-window aggregations) carry their aggregation
(column, function, window) in the features JSON, so changing an aggregation changes the
definition, and a registered event group can be rebuilt from its record.
Only :mod:`pyspark.sql.types` is used, to name feature types.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pyspark.sql.types import DataType, _parse_datatype_json_value

__all__ = ["FOREVER", "Feature", "FeatureGroupDefinition", "ttl_limit"]

#: A TTL this long (beyond Spark's timestamp range) means "no limit".
FOREVER = timedelta(days=3_650_000)


def ttl_limit(ttl: timedelta | None) -> timedelta | None:
    """The limit a TTL sets: ``None`` (no limit) for ``None`` or a "forever" value such as
    ``timedelta.max`` (anything from :data:`FOREVER` up), else ``ttl``.

    >>> ttl_limit(timedelta.max) is None, ttl_limit(timedelta(days=30))
    (True, datetime.timedelta(days=30))
    """
    return None if ttl is None or ttl >= FOREVER else ttl


@dataclass(frozen=True)
class Feature:
    """A feature column: its name and Spark type.

    Examples
    --------
    >>> from pyspark.sql.types import DoubleType
    >>> str(Feature("spend", DoubleType()))
    'spend: double'
    """

    name: str
    dtype: DataType
    #: For a time-window aggregation feature: ``(column, function, window)`` as declared
    #: (window spelled as in ``"7d"``); None for a feature stored as a column.
    aggregation: tuple[str, str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "type": <Spark JSON type>}``, with ``"aggregation":
        {"column", "function", "window"}`` for an aggregation feature (absent otherwise, so
        the records of stored-column features are unchanged)."""
        out: dict[str, Any] = {"name": self.name, "type": json.loads(self.dtype.json())}
        if self.aggregation is not None:
            column, function, window = self.aggregation
            out["aggregation"] = {"column": column, "function": function, "window": window}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feature:
        """The inverse of :meth:`to_dict`."""
        spec = data.get("aggregation")
        aggregation = (
            None
            if spec is None
            else (str(spec["column"]), str(spec["function"]), str(spec["window"]))
        )
        return cls(str(data["name"]), _parse_datatype_json_value(data["type"]), aggregation)

    def __str__(self) -> str:
        text = f"{self.name}: {self.dtype.simpleString()}"
        if self.aggregation is not None:
            column, function, window = self.aggregation
            text += f" = {function}({column}) over {window}"
        return text


@dataclass(frozen=True)
class FeatureGroupDefinition:
    """What the registry knows of one version of a feature group."""

    name: str
    version: str
    entity_name: str
    join_keys: tuple[str, ...]
    event_time_col: str
    features: tuple[Feature, ...]
    transform_hash: str
    created_time_col: str | None = None
    ttl: timedelta | None = None
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def is_event_group(self) -> bool:
        """Whether the version stores events and its features are window aggregations."""
        return any(f.aggregation is not None for f in self.features)

    def schema_json(self) -> str:
        """The declared schema as stable JSON (sorted keys), as recorded in Delta commits."""
        return json.dumps([f.to_dict() for f in self.features], sort_keys=True)

    def definition_hash(self) -> str:
        """SHA-256 of what makes rows of two writes comparable: transform, schema, keys, times.

        Catalog information (description, owner, tags, TTL) is not part of it.
        """
        payload = json.dumps(
            [
                self.transform_hash,
                self.schema_json(),
                list(self.join_keys),
                self.event_time_col,
                self.created_time_col,
            ]
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def differences(self, other: FeatureGroupDefinition) -> list[str]:
        """What makes ``other`` a different schema/logic than this definition."""
        problems = []
        if self.transform_hash != other.transform_hash:
            new_hash, old_hash = other.transform_hash[:12], self.transform_hash[:12]
            problems.append(f"transform hash {new_hash} != registered {old_hash}")
        if self.schema_json() != other.schema_json():
            old = ", ".join(map(str, self.features))
            new = ", ".join(map(str, other.features))
            problems.append(f"features [{new}] != registered [{old}]")
        if self.join_keys != other.join_keys:
            problems.append(
                f"join keys {list(other.join_keys)} != registered {list(self.join_keys)}"
            )
        if self.event_time_col != other.event_time_col:
            problems.append(
                f"event time column {other.event_time_col!r} != registered {self.event_time_col!r}"
            )
        if self.created_time_col != other.created_time_col:
            problems.append(
                f"created time column {other.created_time_col!r} != "
                f"registered {self.created_time_col!r}"
            )
        return problems

    def to_row(self) -> dict[str, Any]:
        """The registry row (plain Python values; ``features_json`` holds the schema)."""
        return {
            "name": self.name,
            "version": self.version,
            "entity_name": self.entity_name,
            "join_keys": list(self.join_keys),
            "event_time_col": self.event_time_col,
            "created_time_col": self.created_time_col,
            "features_json": self.schema_json(),
            "transform_hash": self.transform_hash,
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
            "created_at": self.created_at or datetime.now(timezone.utc),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FeatureGroupDefinition:
        """The inverse of :meth:`to_row` (``created_at`` may be naive UTC or ISO text)."""
        ttl = row["ttl_seconds"]
        created = row["created_at"]
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return cls(
            name=row["name"],
            version=row["version"],
            entity_name=row["entity_name"],
            join_keys=tuple(row["join_keys"]),
            event_time_col=row["event_time_col"],
            created_time_col=row["created_time_col"],
            features=tuple(Feature.from_dict(f) for f in json.loads(row["features_json"])),
            transform_hash=row["transform_hash"],
            ttl=None if ttl is None else timedelta(seconds=ttl),
            description=row["description"] or "",
            owner=row["owner"] or "",
            tags=dict(row["tags"] or {}),
            created_at=created,
        )

    def to_json(self) -> str:
        """The registry row as JSON text (kept as a table property of the version's table)."""
        row = self.to_row()
        row["created_at"] = row["created_at"].isoformat()
        return json.dumps(row, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureGroupDefinition:
        """The inverse of :meth:`to_json`."""
        return cls.from_row(json.loads(text))
