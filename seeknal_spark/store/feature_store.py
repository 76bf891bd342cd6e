"""Where feature tables live: one Delta table per (feature group, version), plus the registry.

A store has a root folder (a local path or any Hadoop URI: ``s3://``, ``abfss://``,
``dbfs:/`` ...) or a metastore schema (``catalog="main.features"`` on Databricks / Unity
Catalog, or ``"default"`` with the local session catalog)::

    <root>/feature_groups/<group>/<version>/      Delta table of that version's features
    <root>/_registry/                             Delta table of definitions

    <catalog>.fg_<len(group)>_<group>_<version>   (table mode; the length keeps names unique)
    <catalog>.seeknal_registry
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from pyspark.sql import DataFrame, SparkSession

from seeknal_spark._timestamps import to_utc_datetime
from seeknal_spark.definitions.feature import FeatureGroupDefinition
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ConfigurationError, NotFoundError
from seeknal_spark.store.delta_protocol import (
    COMMIT_METADATA_KEY,
    WRITE_TIME_COL,
    DeltaTarget,
    commit_version,
    read_history,
    table_properties,
)
from seeknal_spark.store.registry import Registry


class _Attachable(Protocol):
    """What :meth:`FeatureStore.register` attaches: a feature group (no import of it here)."""

    store: FeatureStore | None


G = TypeVar("G", bound=_Attachable)
__all__ = ["COMMIT_METADATA_KEY", "WRITE_TIME_COL", "FeatureStore"]

logger = logging.getLogger(__name__)


class FeatureStore:
    """The home of feature tables and their registry.

    Parameters
    ----------
    path:
        Root folder or Hadoop URI (``/data/features``, ``s3a://bucket/features``).
    catalog:
        Instead of ``path``: a metastore schema, ``"catalog.schema"`` or ``"schema"``;
        tables are created there (managed tables).
    spark:
        Session to use; by default :func:`seeknal_spark.session.get_spark` (the active
        session, untouched, or a new local one with Delta).

    Examples
    --------
    >>> store = FeatureStore("/tmp/seeknal_doctest_store", spark=spark)
    >>> store.table_location("customer_spend", "v1")
    '/tmp/seeknal_doctest_store/feature_groups/customer_spend/v1'
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        catalog: str | None = None,
        spark: SparkSession | None = None,
    ) -> None:
        if (path is None) == (catalog is None):
            raise ConfigurationError(
                "FeatureStore needs exactly one of path= (a folder or URI) or "
                "catalog= ('catalog.schema' for metastore tables)"
            )
        if catalog is not None:
            parts = catalog.split(".")
            if not 1 <= len(parts) <= 2:
                raise ConfigurationError(
                    f"catalog {catalog!r} must be 'schema' or 'catalog.schema'"
                )
            for part in parts:
                validate_name(part, "catalog/schema")
        if path is not None and not str(path).strip():
            raise ConfigurationError("FeatureStore path is empty: give a folder or URI")
        self.path = None if path is None else str(path).rstrip("/")
        self.catalog = catalog
        self._spark = spark
        self._registry: Registry | None = None
        # (group, version) -> the definition JSON this process saw registered for it
        self._registered: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        where = f"path={self.path!r}" if self.path is not None else f"catalog={self.catalog!r}"
        return f"FeatureStore({where})"

    @property
    def spark(self) -> SparkSession:
        """The session this store uses."""
        if self._spark is None:
            from seeknal_spark.session import get_spark

            self._spark = get_spark()
        return self._spark

    @property
    def is_catalog(self) -> bool:
        return self.catalog is not None

    # -- locations -------------------------------------------------------------------
    def table_location(self, group: str, version: str) -> str:
        """The Delta path, or the metastore table name, of a group version."""
        validate_name(group, "feature group")
        validate_name(version, "version")
        if self.catalog is not None:
            return f"{self.catalog}.fg_{len(group)}_{group}_{version}"
        return f"{self.path}/feature_groups/{group}/{version}"

    def target(self, group: str, version: str) -> DeltaTarget:
        """The Delta table of a group version, for :mod:`~seeknal_spark.store.delta_protocol`."""
        return DeltaTarget(self.table_location(group, version), self.catalog is not None)

    def check_writable(self) -> None:
        """Raise :class:`ConfigurationError` when a local store root cannot hold tables.

        A path whose nearest existing part is a file, or a folder this process cannot
        write, is refused before any job runs. Remote URIs are not checked here.
        """
        if self.path is None:
            return
        local = self.path[len("file:") :] if self.path.startswith("file:") else self.path
        if "://" in local:
            return
        probe = os.path.abspath(local)
        while not os.path.exists(probe):
            parent = os.path.dirname(probe)
            if parent == probe:
                return
            probe = parent
        if not os.path.isdir(probe):
            raise ConfigurationError(
                f"store path {self.path!r}: {probe!r} is a file, not a folder; give "
                "FeatureStore a folder path (nothing was written)"
            )
        if not os.access(probe, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"store path {self.path!r}: folder {probe!r} is not writable by this process; "
                "fix its permissions or choose another path (nothing was written)"
            )

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            if self.catalog is not None:
                self._registry = Registry(
                    self.spark, f"{self.catalog}.seeknal_registry", is_table=True
                )
            else:
                self._registry = Registry(self.spark, f"{self.path}/_registry", is_table=False)
        return self._registry

    def record_definition(self, definition: FeatureGroupDefinition) -> None:
        """Make the registry hold ``definition`` (what a group version's table now carries).

        The registry is read (and upserted when it differs) once per group version and
        definition in this process: a version's definition changes only through a write,
        which checks it against the table first, so later writes of the same definition
        skip the registry's Delta reads.
        """
        key = (definition.name, definition.version)
        text = definition.to_json()
        if self._registered.get(key) == text:
            return
        registered = self.registry.get(*key)
        if registered is None or registered.differences(definition):
            self.registry.upsert(definition)
        self._registered[key] = text

    # -- feature groups ----------------------------------------------------------------
    def register(self, feature_group: G) -> G:
        """Attach a feature group to this store (its writes and reads go here)."""
        feature_group.store = self
        return feature_group

    def list_feature_groups(self) -> list[FeatureGroupDefinition]:
        """Every registered (group, version), sorted by name then version."""
        return self.registry.all()

    def versions(self, group: str) -> list[str]:
        """The registered versions of a group, oldest first."""
        return [d.version for d in self.registry.versions(validate_name(group, "feature group"))]

    def get_definition(self, group: str, version: str) -> FeatureGroupDefinition:
        """The registered definition of a group version.

        Raises
        ------
        NotFoundError
            When the group or the version was never written to this store.
        """
        definition = self.registry.get(
            validate_name(group, "feature group"), validate_name(version, "version")
        )
        if definition is None:
            known = self.versions(group)
            if known:
                raise NotFoundError(
                    f"feature group {group!r} has no version {version!r} in {self!r}; "
                    f"known versions: {known}"
                )
            names = sorted({d.name for d in self.list_feature_groups()})
            raise NotFoundError(
                f"feature group {group!r} is not registered in {self!r}; write it first "
                f"(fg.write(...)); registered groups: {names}"
            )
        return definition

    def latest_version(self, group: str) -> str:
        """The default version of a group: its latest registered version.

        The one policy every layer uses when no version is given.

        Raises
        ------
        NotFoundError
            When the group has no registered version in this store (naming the group).
        """
        known = self.versions(group)
        if not known:
            names = sorted({d.name for d in self.list_feature_groups()})
            raise NotFoundError(
                f"feature group {group!r} has no registered version in {self!r}; write it "
                f"first (fg.write(...)) or pass a version; registered groups: {names}"
            )
        return known[-1]

    def describe(self, group: str, version: str | None = None) -> dict[str, Any]:
        """A JSON-friendly description of a group version (latest version by default)."""
        if version is None:
            version = self.latest_version(group)
        d = self.get_definition(group, version)
        return {
            "name": d.name,
            "version": d.version,
            "entity": d.entity_name,
            "join_keys": list(d.join_keys),
            "event_time_col": d.event_time_col,
            "created_time_col": d.created_time_col,
            "features": [{"name": f.name, "type": f.dtype.simpleString()} for f in d.features],
            "transform_hash": d.transform_hash,
            "ttl_seconds": None if d.ttl is None else d.ttl.total_seconds(),
            "description": d.description,
            "owner": d.owner,
            "tags": dict(d.tags),
            "created_at": None if d.created_at is None else d.created_at.isoformat(),
            "table": self.table_location(d.name, d.version),
            "versions": self.versions(group),
        }

    # -- tables ----------------------------------------------------------------------------
    def table_exists(self, group: str, version: str) -> bool:
        """Whether the group version has a Delta table (its properties can be read)."""
        return table_properties(self.spark, self.target(group, version)) is not None

    def _require_table(self, group: str, version: str) -> str:
        if not self.table_exists(group, version):
            self.get_definition(group, version)  # a clearer error when the version is unknown
            raise NotFoundError(
                f"feature group {group!r} version {version!r} has no Delta table at "
                f"{self.table_location(group, version)!r}; write it first"
            )
        return self.table_location(group, version)

    def read_table(
        self,
        group: str,
        version: str,
        *,
        as_of_version: int | None = None,
        as_of_timestamp: datetime | date | str | None = None,
    ) -> DataFrame:
        """The stored rows of a group version, including :data:`WRITE_TIME_COL`.

        ``as_of_version`` (a Delta table version) or ``as_of_timestamp`` time-travel to the
        table as it was then.
        """
        location = self._require_table(group, version)
        if as_of_version is not None and as_of_timestamp is not None:
            raise ValueError("give as_of_version or as_of_timestamp, not both")
        if as_of_version is not None and (not isinstance(as_of_version, int) or as_of_version < 0):
            raise ValueError(f"as_of_version must be a Delta version >= 0, got {as_of_version!r}")
        reader = self.spark.read.format("delta")
        if as_of_version is not None:
            reader = reader.option("versionAsOf", as_of_version)
        if as_of_timestamp is not None:
            if not isinstance(as_of_timestamp, str):
                as_of_timestamp = to_utc_datetime(as_of_timestamp).strftime(
                    "%Y-%m-%d %H:%M:%S.%f+00:00"
                )
            reader = reader.option("timestampAsOf", as_of_timestamp)
        try:
            if self.catalog is not None:
                return reader.table(location)
            return reader.load(location)
        except Exception as exc:
            text = str(exc)
            markers = ("VersionNotFound", "VERSION_NOT_FOUND", "Cannot time travel", "TIMESTAMP_")
            if any(marker in text for marker in markers):
                raise NotFoundError(
                    f"feature group {group!r} version {version!r} has no Delta table version "
                    f"for as_of_version={as_of_version!r} as_of_timestamp={as_of_timestamp!r}: "
                    f"see store.history({group!r}, {version!r}) for the versions that exist"
                ) from exc
            raise

    def current_table_version(self, group: str, version: str) -> int:
        """The latest Delta table version of a group version."""
        self._require_table(group, version)
        row = read_history(self.spark, self.target(group, version), limit=1).first()
        if row is None:
            raise NotFoundError(f"table {self.table_location(group, version)!r} has no commit")
        return int(row["version"])

    def commit_version(self, group: str, version: str, write_id: str) -> int:
        """The exact Delta version of the seeknal write ``write_id`` (its commit metadata).

        Raises
        ------
        NotFoundError
            When no commit of the table carries it: the version is never guessed.
        """
        self._require_table(group, version)
        return commit_version(self.spark, self.target(group, version), write_id)

    def history(self, group: str, version: str) -> list[dict[str, Any]]:
        """The write history of a group version, newest first.

        Each entry has the Delta ``version``, ``timestamp``, ``operation`` and, for writes
        made by seeknal-spark, the recorded ``window_start``, ``window_end``, ``mode``,
        ``transform_hash`` and ``schema``.
        """
        from pyspark.sql import functions as F

        self._require_table(group, version)
        rows = (
            read_history(self.spark, self.target(group, version))
            .select(
                "version",
                # an ISO-8601 instant with its offset, whatever the session time zone
                F.date_format("timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").alias("timestamp"),
                "operation",
                "seeknal",
            )
            .collect()  # one row per commit: metadata, not data
        )
        out = []
        for r in rows:
            entry: dict[str, Any] = {
                "delta_version": int(r["version"]),
                "timestamp": r["timestamp"],
                "operation": r["operation"],
            }
            if r["seeknal"]:
                try:
                    entry.update(json.loads(r["seeknal"]).get(COMMIT_METADATA_KEY, {}))
                except (ValueError, AttributeError):
                    entry["user_metadata"] = r["seeknal"]
            out.append(entry)
        return out
