"""A project: a :class:`~seeknal_spark.app.config.ProjectConfig` turned into live objects.

``Project.from_config(cfg)`` builds the session (or reuses the active one untouched), the
:class:`~seeknal_spark.store.feature_store.FeatureStore`, the entities, the inputs and the
:class:`~seeknal_spark.store.feature_group.FeatureGroup` objects wired to both. It also runs
backfills: :func:`materialize_group` splits a time range into windows, writes them in
order, and skips a window the table already holds with the same transform hash (as
recorded in the Delta commit), so a re-run after a failure resumes where it stopped.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession

from seeknal_spark._timestamps import to_utc_datetime
from seeknal_spark.app.config import InputConfig, ProjectConfig, SparkConfig, load_config
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.errors import ConfigurationError, NotFoundError
from seeknal_spark.store.feature_group import FeatureGroup, InputSource, WriteMode
from seeknal_spark.store.feature_store import FeatureStore

if TYPE_CHECKING:
    from seeknal_spark.online.sink import OnlineSink
    from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures

__all__ = [
    "MaterializeSummary",
    "Project",
    "WindowResult",
    "materialize_group",
    "session_for",
    "split_windows",
    "window_is_written",
]

logger = logging.getLogger(__name__)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
_SUFFIX_FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".orc": "orc"}
_DELTA_FLAGS = (
    "--packages io.delta:delta-spark_2.13:4.0.1 "
    "--conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension "
    "--conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"
)


# -- session ---------------------------------------------------------------------------------
def session_for(spark_config: SparkConfig) -> SparkSession:
    """The session a project runs on.

    1. An active session (Databricks, a notebook, a test) is returned untouched.
    2. Under ``spark-submit`` (the JVM launched this Python), a session is built with
       nothing but what spark-submit passed: no master or conf from the file, which are
       for local runs only. Delta must then be on the command line.
    3. Otherwise a new local session with Delta, ``spark.master`` and ``spark.conf`` of
       the file (:func:`seeknal_spark.session.get_spark`).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        spark = SparkSession.builder.appName(spark_config.app_name).getOrCreate()
        extensions = spark.conf.get("spark.sql.extensions", "") or ""
        if "DeltaSparkSessionExtension" not in extensions:
            raise ConfigurationError(
                "the spark-submit session has no Delta Lake: add " + _DELTA_FLAGS
            )
        return spark
    from seeknal_spark.session import get_spark

    return get_spark(
        spark_config.app_name,
        master=spark_config.master,
        conf=spark_config.conf,
        jars_dir=spark_config.jars_dir,
    )


def _local_path(path: str) -> str:
    """An absolute path for a local relative path (against the working directory)."""
    return path if _SCHEME.match(path) or os.path.isabs(path) else os.path.abspath(path)


def _import(target: str, where: str, what: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"{where}: {what}: cannot import {target!r} ({type(exc).__name__}: {exc}); check "
            "the module is installed or on --py-files and the function name"
        ) from None
    if not callable(obj):
        raise ConfigurationError(f"{where}: {what}: {target!r} is not a function")
    return obj  # type: ignore[no-any-return]


def _read_path(spark: SparkSession, path: str, fmt: str, options: Mapping[str, str]) -> DataFrame:
    reader = spark.read.format(fmt)
    if fmt == "csv" and not options:
        reader = reader.option("header", "true").option("inferSchema", "true")
    return reader.options(**dict(options)).load(path)


def _input_source(config: InputConfig) -> InputSource:
    if config.generator is not None:
        function = _import(
            config.generator, config.at("generator"), f"inputs.{config.name}.generator"
        )
        return functools.partial(function, **dict(config.args))
    if config.table is not None:
        table = config.table
        return lambda spark: spark.read.table(table)
    assert config.path is not None  # the config guarantees one of generator, table, path
    path = _local_path(config.path)
    fmt = config.format or next(
        (f for s, f in _SUFFIX_FORMATS.items() if path.lower().rstrip("/").endswith(s)), "delta"
    )
    return functools.partial(_read_path, path=path, fmt=fmt, options=dict(config.options))


# -- backfills -------------------------------------------------------------------------------
def split_windows(
    start: datetime | date, end: datetime | date | None, interval: timedelta | None = None
) -> list[tuple[datetime, datetime | None]]:
    """``[start, end)`` as consecutive windows of ``interval`` (the last may be shorter).

    Without ``interval`` the whole range is one window; without ``end`` the single window
    is open-ended (``interval`` then needs an ``end``).
    """
    first = to_utc_datetime(start)
    last = None if end is None else to_utc_datetime(end)
    if last is not None and last <= first:
        raise ValueError(f"end {last.isoformat()} must be after start {first.isoformat()}")
    if interval is None:
        return [(first, last)]
    if last is None:
        raise ValueError("an --interval backfill needs an --end")
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {interval}")
    windows: list[tuple[datetime, datetime | None]] = []
    cursor = first
    while cursor < last:
        upper = min(cursor + interval, last)
        windows.append((cursor, upper))
        cursor = upper
    return windows


def _parse_instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    return to_utc_datetime(datetime.fromisoformat(text))


def window_is_written(
    history: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime | None,
    transform_hash: str,
) -> bool:
    """Whether the newest write touching ``[start, end)`` covered it with ``transform_hash``.

    ``history`` is :meth:`FeatureStore.history` (newest first). Commits without a
    recorded window (OPTIMIZE, VACUUM...) are ignored.
    """
    for entry in history:
        written_start = _parse_instant(entry.get("window_start"))
        if written_start is None:
            continue
        written_end = _parse_instant(entry.get("window_end"))
        overlaps = (end is None or written_start < end) and (
            written_end is None or start < written_end
        )
        if not overlaps:
            continue
        covers = written_start <= start and (
            written_end is None or (end is not None and end <= written_end)
        )
        return covers and entry.get("transform_hash") == transform_hash
    return False


@dataclass(frozen=True)
class WindowResult:
    """One window of a backfill: written (with its row count) or skipped."""

    feature_group: str
    version: str
    window_start: datetime
    window_end: datetime | None
    status: str  # "written" or "skipped"
    rows: int = 0
    delta_version: int | None = None
    seconds: float = 0.0


@dataclass
class MaterializeSummary:
    """What a materialize run did, as printed in the one-line JSON summary."""

    windows: list[WindowResult] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        written = [w for w in self.windows if w.status == "written"]
        groups: dict[str, dict[str, Any]] = {}
        for w in self.windows:
            g = groups.setdefault(
                w.feature_group,
                {
                    "version": w.version,
                    "windows": 0,
                    "written": 0,
                    "rows": 0,
                    "delta_version": None,
                },
            )
            g["windows"] += 1
            if w.status == "written":
                g["written"] += 1
                g["rows"] += w.rows
                g["delta_version"] = w.delta_version
        return {
            "status": "ok",
            "rows": sum(w.rows for w in written),
            "windows": len(self.windows),
            "windows_written": len(written),
            "windows_skipped": len(self.windows) - len(written),
            "versions": {name: g["version"] for name, g in groups.items()},
            "feature_groups": groups,
            "duration_s": round(self.duration_s, 3),
        }


def _rows_written(store: FeatureStore, group: str, version: str, delta_version: int) -> int:
    """``numOutputRows`` of one Delta commit (metadata, no data scan)."""
    from delta.tables import DeltaTable

    location = store.table_location(group, version)
    table = (
        DeltaTable.forName(store.spark, location)
        if store.is_catalog
        else DeltaTable.forPath(store.spark, location)
    )
    for limit in (10, None):  # the commit is almost always among the latest few
        history = table.history(limit) if limit is not None else table.history()
        row = history.where(f"version = {int(delta_version)}").select("operationMetrics").first()
        if row is not None:
            return int((row["operationMetrics"] or {}).get("numOutputRows", 0))
    return 0


def materialize_group(
    feature_group: FeatureGroup,
    start: datetime | date,
    end: datetime | date | None = None,
    *,
    interval: timedelta | None = None,
    version: str = "v1",
    mode: WriteMode = "overwrite",
    force: bool = False,
    on_window: Callable[[WindowResult], None] | None = None,
) -> list[WindowResult]:
    """Write ``[start, end)`` of a feature group window by window, in order.

    A window is skipped when the table's newest write touching it covered it with the
    same transform hash (see :func:`window_is_written`), unless ``force``; so running
    the same backfill again writes nothing, and after a failure it resumes from the
    first window not written. ``on_window`` is called after each window.

    Returns
    -------
    list of WindowResult
        One per window, in order.
    """
    store = feature_group._require_store()
    windows = split_windows(start, end, interval)
    transform_hash = feature_group.transform_hash()
    history: list[dict[str, Any]] = []
    if not force and store.table_exists(feature_group.name, version):
        history = store.history(feature_group.name, version)
    results = []
    for index, (window_start, window_end) in enumerate(windows):
        began = time.monotonic()
        if not force and window_is_written(history, window_start, window_end, transform_hash):
            result = WindowResult(feature_group.name, version, window_start, window_end, "skipped")
            logger.info(
                "skip %s/%s window [%s, %s): already written with this transform",
                feature_group.name,
                version,
                window_start,
                window_end,
            )
        else:
            try:
                written = feature_group.write(window_start, window_end, version=version, mode=mode)
            except Exception:
                logger.error(
                    "%s/%s window %d/%d [%s, %s) failed; %d window(s) before it are stored; "
                    "run again to resume from this window",
                    feature_group.name,
                    version,
                    index + 1,
                    len(windows),
                    window_start,
                    window_end,
                    index,
                )
                raise
            rows = _rows_written(store, feature_group.name, version, written.delta_version)
            result = WindowResult(
                feature_group.name,
                version,
                window_start,
                window_end,
                "written",
                rows,
                written.delta_version,
                time.monotonic() - began,
            )
        results.append(result)
        if on_window is not None:
            on_window(result)
    return results


# -- project ---------------------------------------------------------------------------------
class Project:
    """Live objects of a project file: session, store, entities, inputs, feature groups.

    Build it with :meth:`from_config` or :meth:`load`.
    """

    def __init__(
        self,
        config: ProjectConfig,
        spark: SparkSession,
        store: FeatureStore,
        entities: Mapping[str, Entity],
        inputs: Mapping[str, InputSource],
        feature_groups: Mapping[str, FeatureGroup],
    ) -> None:
        self.config = config
        self.spark = spark
        self.store = store
        self.entities = dict(entities)
        self.inputs = dict(inputs)
        self.feature_groups = dict(feature_groups)

    def __repr__(self) -> str:
        return f"Project({self.config.name!r}, store={self.store!r})"

    @classmethod
    def load(cls, path: str | os.PathLike[str], spark: SparkSession | None = None) -> Project:
        """:func:`~seeknal_spark.app.config.load_config` then :meth:`from_config`."""
        return cls.from_config(load_config(path), spark=spark)

    @classmethod
    def from_config(cls, config: ProjectConfig, spark: SparkSession | None = None) -> Project:
        """Build the project's objects; imports every transform and generator now.

        Parameters
        ----------
        config:
            The parsed project file.
        spark:
            A session to use; by default :func:`session_for` (the active session
            untouched, or a new local one from the file's ``spark`` section).

        Raises
        ------
        ConfigurationError
            When a transform or generator cannot be imported or a definition is invalid
            (the message names the file and line).
        """
        spark = spark or session_for(config.spark)
        if config.store.catalog is not None:
            store = FeatureStore(catalog=config.store.catalog, spark=spark)
        else:
            assert config.store.path is not None  # the config guarantees path or catalog
            store = FeatureStore(_local_path(config.store.path), spark=spark)
        entities = {name: Entity(name, e.join_keys) for name, e in config.entities.items()}
        inputs = {name: _input_source(i) for name, i in config.inputs.items()}
        groups: dict[str, FeatureGroup] = {}
        for name, fg in config.feature_groups.items():
            transform: Any
            if fg.transform is not None:
                transform = _import(
                    fg.transform, fg.at("transform"), f"feature_groups.{name}.transform"
                )
            else:
                transform = fg.sql
            try:
                groups[name] = FeatureGroup(
                    name,
                    entities[fg.entity],
                    fg.event_time_col,
                    transform,
                    features=None if fg.features is None else dict(fg.features),
                    ttl=fg.ttl,
                    inputs={i: inputs[i] for i in fg.inputs},
                    store=store,
                    created_time_col=fg.created_time_col,
                    description=fg.description,
                    owner=fg.owner,
                    tags=fg.tags,
                )
            except (ConfigurationError, TypeError, ValueError) as exc:
                raise ConfigurationError(f"{fg.where}: feature_groups.{name}: {exc}") from None
        return cls(config, spark, store, entities, inputs, groups)

    def feature_group(self, name: str) -> FeatureGroup:
        """The feature group ``name`` of this project.

        Raises
        ------
        NotFoundError
            When the project file declares no such group.
        """
        try:
            return self.feature_groups[name]
        except KeyError:
            raise NotFoundError(
                f"feature group {name!r} is not in {self.config.source or 'the project'}; "
                f"declared: {sorted(self.feature_groups)}"
            ) from None

    def default_version(self, name: str) -> str:
        """The version the project file gives a feature group (``v1`` by default)."""
        self.feature_group(name)
        return self.config.feature_groups[name].version

    def read_input(self, name: str) -> DataFrame:
        """The DataFrame of the input ``name`` (a spine, a source table...)."""
        if name not in self.inputs:
            raise NotFoundError(
                f"input {name!r} is not in {self.config.source or 'the project'}; declared: "
                f"{sorted(self.inputs)}"
            )
        source = self.inputs[name]
        if isinstance(source, DataFrame):
            return source
        if isinstance(source, str):
            return self.spark.read.table(source)
        return source(self.spark)

    # -- training and serving ------------------------------------------------------------
    def lookups(self) -> list[FeatureLookup]:
        """The file's ``lookups``, in order (version: the lookup's, else the group's)."""
        from seeknal_spark.training.historical import FeatureLookup

        if not self.config.lookups:
            raise ConfigurationError(
                f"{self.config.source or 'the project'} has no lookups: add a lookups: list "
                "(feature_group, features, default) to build training sets or serve"
            )
        out = []
        for i, lookup in enumerate(self.config.lookups):
            try:
                out.append(
                    FeatureLookup(
                        self.feature_group(lookup.feature_group),
                        features=lookup.features,
                        version=lookup.version or self.default_version(lookup.feature_group),
                        ttl=lookup.ttl,
                        prefix=lookup.prefix,
                        default=lookup.default,
                    )
                )
            except (TypeError, ValueError, NotFoundError) as exc:
                raise ConfigurationError(f"{lookup.where}: lookups[{i}]: {exc}") from None
        return out

    def historical(self, **options: Any) -> HistoricalFeatures:
        """:class:`~seeknal_spark.training.historical.HistoricalFeatures` over :meth:`lookups`.

        The spine time column is ``training.timestamp_col`` (``prediction_time`` without a
        training section); ``options`` go to the constructor.
        """
        from seeknal_spark.training.historical import HistoricalFeatures

        if self.config.training is not None:
            options.setdefault("timestamp_col", self.config.training.timestamp_col)
        return HistoricalFeatures(self.lookups(), **options)

    def online_table_name(self, name: str | None = None) -> str:
        """``name``, else ``online.table`` of the file."""
        table = name or self.config.online.table
        if not table:
            raise ConfigurationError(
                f"no online table name: pass --table or set online.table in "
                f"{self.config.source or 'the project file'}"
            )
        return table

    def online_sink(self, kind: str | None = None) -> OnlineSink:
        """The online sink of the file (``online.sink`` unless ``kind`` names another).

        ``embedded`` without a path uses the sink's default folder; ``redis`` reads the URL
        (or the variable ``url_env``) and the password from the variable ``password_env``.
        """
        online = self.config.online
        kind = kind or online.sink
        if kind == "embedded":
            from seeknal_spark.online.embedded import EmbeddedSink

            path = None if online.embedded is None else online.embedded.path
            return EmbeddedSink(None if path is None else _local_path(path))
        if kind == "redis":
            if online.redis is None:
                raise ConfigurationError(
                    f"{self.config.source or 'the project'} has no online.redis section"
                )
            from seeknal_spark.online.redis import RedisSink

            return RedisSink(
                online.redis.resolved_url(),
                password_env=online.redis.password_env,
                key_prefix=online.redis.key_prefix,
                socket_timeout=online.redis.socket_timeout,
            )
        raise ConfigurationError(f"unknown online sink {kind!r}: use embedded or redis")

    def materialize(
        self,
        start: datetime | date,
        end: datetime | date | None = None,
        *,
        feature_groups: Sequence[str] | None = None,
        interval: timedelta | None = None,
        version: str | None = None,
        mode: WriteMode = "overwrite",
        force: bool = False,
        on_window: Callable[[WindowResult], None] | None = None,
    ) -> MaterializeSummary:
        """Backfill the named groups (all by default, in file order); see :func:`materialize_group`.

        ``version`` overrides each group's version from the file.
        """
        began = time.monotonic()
        names = list(feature_groups or self.feature_groups)
        groups = [self.feature_group(n) for n in names]  # fail before writing anything
        summary = MaterializeSummary()
        for group in groups:
            summary.windows += materialize_group(
                group,
                start,
                end,
                interval=interval,
                version=version or self.default_version(group.name),
                mode=mode,
                force=force,
                on_window=on_window,
            )
        summary.duration_s = time.monotonic() - began
        return summary
