"""Which features of which feature-group version to join, and how: :class:`FeatureLookup`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from seeknal_spark.definitions.aggregation import COUNT_FUNCTIONS
from seeknal_spark.definitions.feature import ttl_limit
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ConfigurationError, NotFoundError
from seeknal_spark.store.feature_group import FeatureGroup
from seeknal_spark.store.feature_store import FeatureStore

__all__ = ["FeatureLookup"]


@dataclass(frozen=True, init=False)
class FeatureLookup:
    """Which features of which feature-group version to join, and how.

    Parameters
    ----------
    feature_group:
        A :class:`~seeknal_spark.store.feature_group.FeatureGroup` attached to a store.
    features:
        Feature names to bring over; None means every feature of the version.
    version:
        The feature-group version; None means the latest registered version (the one
        registered last) at the time of the build. The version used is recorded in the
        manifest, so a rebuild from the manifest uses it even after newer versions appear.
    ttl:
        Overrides the group's TTL: a value is usable while ``event_time > spine_time - ttl``.
        None uses the group's TTL (no TTL when the group has none).
    prefix:
        Put before each output column name (``prefix="cust_"`` gives ``cust_spend``).
    default:
        Value for spine rows with no matching feature row: one value for every feature,
        or ``{feature: value}``. For an event group (time-window aggregations), the value
        of an aggregate that is null (an empty window); counts are never null and their
        default is always 0, so a key absent from an online table reads 0 as offline.

    A lookup of an event group takes no ``ttl``: each aggregation's window bounds it.

    Examples
    --------
    >>> from seeknal_spark.definitions.entity import Entity
    >>> fg = FeatureGroup("spend", Entity("customer", ["customer_id"]), "day",
    ...                   transform=lambda **inputs: None, features={"total": "double"})
    >>> lookup = FeatureLookup(fg, features=["total"], prefix="c_", default=0.0)
    >>> lookup.output_name("total"), lookup.defaults
    ('c_total', {'total': 0.0})
    """

    feature_group: FeatureGroup
    features: tuple[str, ...] | None
    version: str | None
    ttl: timedelta | None
    prefix: str
    default: Any

    def __init__(
        self,
        feature_group: FeatureGroup,
        features: Sequence[str] | str | None = None,
        version: str | None = None,
        ttl: timedelta | None = None,
        prefix: str | None = None,
        default: Any = None,
    ) -> None:
        if not isinstance(feature_group, FeatureGroup):
            raise TypeError(
                f"FeatureLookup needs a FeatureGroup, got {type(feature_group).__name__}"
            )
        names = None
        if features is not None:
            names = (features,) if isinstance(features, str) else tuple(features)
            if not names:
                raise ValueError(
                    f"lookup of {feature_group.name!r}: features is empty; omit it for all"
                )
            for name in names:
                validate_name(name, "feature")
            if len(set(names)) != len(names):
                raise ValueError(f"lookup of {feature_group.name!r} lists a feature twice")
        if version is not None:
            validate_name(version, "version")
        if ttl is not None:
            if not isinstance(ttl, timedelta):
                raise TypeError(f"lookup of {feature_group.name!r}: ttl must be a timedelta")
            if ttl <= timedelta(0):
                raise ValueError(
                    f"lookup of {feature_group.name!r}: ttl must be positive, got {ttl}; "
                    "use None for the group's TTL"
                )
        if feature_group.is_event_group:
            available = [n for agg in feature_group.aggregations for n in agg.names]
            unknown_names = [n for n in names or () if n not in available]
            if unknown_names:
                raise NotFoundError(
                    f"lookup of {feature_group.name!r}: no aggregation feature(s) "
                    f"{unknown_names}; its features are {available}"
                )
            if ttl is not None:
                raise ConfigurationError(
                    f"lookup of {feature_group.name!r}: an event group takes no ttl (each "
                    "aggregation's window bounds the events it reads); omit ttl="
                )
        if prefix is not None and prefix != "":
            validate_name(prefix, "prefix")
        if isinstance(default, Mapping) and names is not None:
            unknown = sorted(set(default) - set(names))
            if unknown:
                raise NotFoundError(
                    f"lookup of {feature_group.name!r}: defaults for {unknown}, which are not "
                    f"among its features {list(names)}"
                )
        object.__setattr__(self, "feature_group", feature_group)
        object.__setattr__(self, "features", names)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "ttl", ttl)
        object.__setattr__(self, "prefix", prefix or "")
        object.__setattr__(
            self, "default", dict(default) if isinstance(default, Mapping) else default
        )

    def __hash__(self) -> int:
        return hash((id(self.feature_group), self.features, self.version, self.ttl, self.prefix))

    @property
    def name(self) -> str:
        """The feature group's name."""
        return self.feature_group.name

    @property
    def store(self) -> FeatureStore:
        """The feature group's store (a ConfigurationError when it has none)."""
        store = self.feature_group.store
        if store is None:
            raise ConfigurationError(
                f"feature group {self.name!r} has no store: pass store=FeatureStore(...) or "
                "call store.register(fg) before looking it up"
            )
        return store

    def resolved_version(self) -> str:
        """``version``, or the store's default (its latest registered version) when None.

        Raises
        ------
        NotFoundError
            When the group has no registered version in its store.
        """
        if self.version is not None:
            return self.version
        return self.store.latest_version(self.name)

    def effective_ttl(self, registered: timedelta | None = None) -> timedelta | None:
        """The limit used: the lookup's TTL, else the one ``registered`` with the version
        read, else the feature group's; a "forever" TTL (``timedelta.max``) is no limit."""
        if self.ttl is not None:
            return ttl_limit(self.ttl)
        return registered or self.feature_group.ttl

    def output_name(self, feature: str) -> str:
        """The training-set column of ``feature``."""
        return f"{self.prefix}{feature}"

    def source_feature(self, output_name: str) -> str:
        """The feature behind an output column name."""
        if self.prefix and output_name.startswith(self.prefix):
            return output_name[len(self.prefix) :]
        return output_name

    @property
    def defaults(self) -> dict[str, Any]:
        """``{feature: default}`` for the lookup's features (empty when there is none);
        the count features of an event group always default to 0."""
        if isinstance(self.default, Mapping):
            out = dict(self.default)
        elif self.default is None or self.features is None:
            out = {}
        else:
            out = {f: self.default for f in self.features}
        for agg in self.feature_group.aggregations:
            if agg.function in COUNT_FUNCTIONS:
                out.update({n: 0 for n in agg.names if self.features is None or n in self.features})
        return out
