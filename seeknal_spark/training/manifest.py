"""What a training set read: :class:`TrainingManifest`, to rebuild it exactly.

For every lookup the manifest records the feature-group version, the Delta table version
read, the transform hash and how it was joined. ``to_dataframe(spine, as_of=manifest)``
rebuilds the identical training set after later writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from seeknal_spark.errors import ConfigurationError

__all__ = ["AsOf", "ManifestEntry", "TrainingManifest", "as_manifest"]


@dataclass(frozen=True)
class ManifestEntry:
    """What one lookup read: group, version, Delta table version and how it was joined."""

    feature_group: str
    version: str
    delta_version: int
    transform_hash: str
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    ttl_seconds: float | None


@dataclass(frozen=True)
class TrainingManifest:
    """The exact inputs of a training set; ``to_dataframe(spine, as_of=manifest)`` rebuilds it.

    Serialise it with :meth:`to_json` next to the model.

    Examples
    --------
    >>> entry = ManifestEntry("spend", "v1", 3, "h", ("total",), ("c_total",), None)
    >>> manifest = TrainingManifest((entry,), "prediction_time", True, created_at="now")
    >>> TrainingManifest.from_json(manifest.to_json()) == manifest
    True
    """

    lookups: tuple[ManifestEntry, ...]
    timestamp_col: str
    inclusive: bool
    feature_start_time: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for entry in data["lookups"]:
            entry["features"] = list(entry["features"])
            entry["output_names"] = list(entry["output_names"])
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingManifest:
        try:
            entries = tuple(
                ManifestEntry(
                    feature_group=str(e["feature_group"]),
                    version=str(e["version"]),
                    delta_version=int(e["delta_version"]),
                    transform_hash=str(e.get("transform_hash", "")),
                    features=tuple(e["features"]),
                    output_names=tuple(e["output_names"]),
                    ttl_seconds=None if e.get("ttl_seconds") is None else float(e["ttl_seconds"]),
                )
                for e in data["lookups"]
            )
            return cls(
                lookups=entries,
                timestamp_col=str(data["timestamp_col"]),
                inclusive=bool(data["inclusive"]),
                feature_start_time=data.get("feature_start_time"),
                created_at=str(data.get("created_at", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"not a training manifest ({exc!r}): {dict(data)!r}") from exc

    @classmethod
    def from_json(cls, text: str) -> TrainingManifest:
        return cls.from_dict(json.loads(text))


AsOf = TrainingManifest | Mapping[str, Any]


def as_manifest(as_of: AsOf | None) -> TrainingManifest | None:
    """``as_of`` as a manifest; None for no pin or a ``{group: delta_version}`` pin."""
    if as_of is None:
        return None
    if isinstance(as_of, TrainingManifest):
        return as_of
    if isinstance(as_of, Mapping):
        if "lookups" in as_of:
            return TrainingManifest.from_dict(as_of)
        for group, delta in as_of.items():
            if not isinstance(delta, int) or isinstance(delta, bool) or delta < 0:
                raise ConfigurationError(
                    f"as_of[{group!r}] = {delta!r}: give a Delta table version (an int >= 0)"
                )
        return None
    raise TypeError(
        f"as_of must be a TrainingManifest or a {{feature_group: delta_version}} dict, got "
        f"{type(as_of).__name__}"
    )
