"""Resolving lookups: which version, features and Delta table version each one reads.

:func:`resolve_lookups` fills in each :class:`~seeknal_spark.training.lookup.FeatureLookup`'s
version and features from the registry (or a training manifest) and checks them;
:func:`pin_lookups` fills in the Delta table version read (the current one, a manifest's,
or ``{feature_group: delta_version}``). Used by
:class:`~seeknal_spark.training.historical.HistoricalFeatures`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from seeknal_spark.definitions.feature import FeatureGroupDefinition
from seeknal_spark.errors import ConfigurationError, NotFoundError
from seeknal_spark.training.lookup import FeatureLookup
from seeknal_spark.training.manifest import AsOf, TrainingManifest

__all__ = ["Resolved", "current_delta", "pin_lookups", "resolve_lookups"]


@dataclass(frozen=True)
class Resolved:
    """A lookup with version and features filled in, its definition and Delta version."""

    lookup: FeatureLookup
    definition: FeatureGroupDefinition
    delta_version: int | None = None


def _check_manifest(i: int, lookup: FeatureLookup, manifest: TrainingManifest | None) -> str | None:
    """The version the manifest recorded for lookup ``i`` (None without a manifest)."""
    if manifest is None:
        return lookup.version
    entry = manifest.lookups[i]
    if entry.feature_group != lookup.name or (lookup.version not in (None, entry.version)):
        raise ConfigurationError(
            f"lookup #{i} is {lookup.name!r} version {lookup.version!r} but the manifest "
            f"recorded {entry.feature_group!r} version {entry.version!r}"
        )
    return entry.version


def resolve_lookups(
    lookups: Sequence[FeatureLookup], manifest: TrainingManifest | None
) -> list[Resolved]:
    """Each lookup with its version (the manifest's, its own, or the latest registered)
    and features (its own, or every feature of the version), checked against the registry.

    Raises
    ------
    NotFoundError
        An unknown version or feature, or defaults for features the lookup does not read.
    ConfigurationError
        The lookups do not fit the manifest.
    """
    if manifest is not None and len(manifest.lookups) != len(lookups):
        raise ConfigurationError(
            f"the manifest has {len(manifest.lookups)} lookups, this HistoricalFeatures "
            f"{len(lookups)}: rebuild with the lookups the manifest was made from"
        )
    resolved = []
    definitions: dict[tuple[str, str], FeatureGroupDefinition] = {}
    for i, lookup in enumerate(lookups):
        version = _check_manifest(i, lookup, manifest) or lookup.resolved_version()
        if (lookup.name, version) not in definitions:
            definitions[lookup.name, version] = lookup.store.get_definition(lookup.name, version)
        definition = definitions[lookup.name, version]
        available = definition.feature_names
        features = lookup.features or tuple(available)
        unknown = [f for f in features if f not in available]
        if unknown:
            raise NotFoundError(
                f"feature group {lookup.name!r} version {version!r} has no feature(s) "
                f"{unknown}; its features are {available}"
            )
        if isinstance(lookup.default, Mapping):
            bad = sorted(set(lookup.default) - set(features))
            if bad:
                raise NotFoundError(
                    f"lookup of {lookup.name!r}: defaults for {bad}, which are not among "
                    f"its features {list(features)}"
                )
        done = replace(lookup, version=version, features=tuple(features))
        outputs = tuple(done.output_name(f) for f in features)
        if manifest is not None and outputs != manifest.lookups[i].output_names:
            raise ConfigurationError(
                f"lookup #{i} ({lookup.name!r}) now outputs {list(outputs)} but the manifest "
                f"recorded {list(manifest.lookups[i].output_names)}"
            )
        resolved.append(Resolved(done, definition))
    return resolved


def current_delta(r: Resolved) -> int:
    """The current Delta table version of the lookup's group version."""
    lookup = r.lookup
    return lookup.store.current_table_version(lookup.name, lookup.resolved_version())


def pin_lookups(
    resolved: list[Resolved], as_of: AsOf | None, manifest: TrainingManifest | None
) -> list[Resolved]:
    """Fill in the Delta table version each lookup reads.

    Raises
    ------
    NotFoundError
        ``as_of`` names a feature group that no lookup reads.
    """
    if manifest is None and isinstance(as_of, Mapping):
        unknown = sorted(set(as_of) - {r.lookup.name for r in resolved})
        if unknown:
            raise NotFoundError(
                f"as_of names feature group(s) {unknown} that no lookup reads; lookups: "
                f"{[r.lookup.name for r in resolved]}"
            )
    out = []
    current: dict[tuple[str, str | None], int] = {}
    for i, r in enumerate(resolved):
        if manifest is not None:
            delta: int | None = manifest.lookups[i].delta_version
        elif isinstance(as_of, Mapping) and r.lookup.name in as_of:
            delta = int(as_of[r.lookup.name])
        else:
            where = (r.lookup.name, r.lookup.version)
            if where not in current:
                current[where] = current_delta(r)
            delta = current[where]
        out.append(replace(r, delta_version=delta if delta is not None else current_delta(r)))
    return out
