r"""A project: a :class:`~seeknal_spark.app.config.ProjectConfig` turned into live objects.

``Project.from_config(cfg)`` (or ``Project.load(path)``) builds the session (or reuses the
active one untouched), the :class:`~seeknal_spark.store.feature_store.FeatureStore`, the
entities, the inputs and the :class:`~seeknal_spark.store.feature_group.FeatureGroup`
objects wired to both. Its workflows, ``materialize / train / serve / parity / drift``,
return typed results and are what the CLI, ``jobs/``, Airflow and a notebook all run.

Examples
--------
>>> import tempfile
>>> from seeknal_spark.app.config import parse_config
>>> folder = tempfile.mkdtemp()
>>> txns = spark.sql("SELECT 'c1' AS customer_id, DATE'2024-01-01' AS day, 2.5 AS amount")
>>> txns.write.parquet(f"{folder}/txns.parquet")
>>> cfg = parse_config("\n".join([
...     "project: {name: demo}",
...     f"store: {{path: {folder}/store}}",
...     f"inputs: {{txns: {{path: {folder}/txns.parquet}}}}",
...     "entities: {customer: {join_keys: [customer_id]}}",
...     "feature_groups:",
...     "  spend: {entity: customer, event_time_col: day, inputs: [txns],",
...     "          sql: 'SELECT customer_id, day, amount AS spend FROM {txns}'}",
... ]), "demo.yaml")
>>> project = Project.from_config(cfg, spark=spark)
>>> summary = project.materialize(date(2024, 1, 1), date(2024, 1, 2))
>>> summary.to_dict()["rows"], summary.to_dict()["versions"]
(1, {'spend': 'v1'})
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.app.backfill import (
    MaterializeSummary,
    WindowResult,
    materialize_group,
    split_windows,
    window_is_written,
)
from seeknal_spark.app.checks import check_parity, run_drift
from seeknal_spark.app.config import ProjectConfig, SparkConfig, load_config
from seeknal_spark.app.inputs import import_callable, input_source, local_path
from seeknal_spark.app.on_demand import build_on_demand
from seeknal_spark.app.online_export import serve_snapshot
from seeknal_spark.app.results import DriftResult, ParityResult, ServeResult, TrainResult
from seeknal_spark.app.sinks import sink_from_config
from seeknal_spark.app.training_sets import read_manifest, write_training_set
from seeknal_spark.definitions.entity import Entity
from seeknal_spark.definitions.on_demand import OnDemandFeature
from seeknal_spark.errors import ConfigurationError, NotFoundError
from seeknal_spark.online.sink import OnlineSink
from seeknal_spark.online.table import OnlineTable
from seeknal_spark.session import get_spark
from seeknal_spark.store.feature_group import FeatureGroup, InputSource, WriteMode
from seeknal_spark.store.feature_store import FeatureStore
from seeknal_spark.store.inputs import read_path
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


def session_for(spark_config: SparkConfig) -> SparkSession:
    """The session a project runs on: :func:`seeknal_spark.session.get_spark` with the file's
    ``spark:`` section (used only for a new local session; an active session is returned
    untouched, and under spark-submit only the command line counts).
    """
    return get_spark(
        spark_config.app_name,
        master=spark_config.master,
        conf=spark_config.conf,
        jars_dir=spark_config.jars_dir,
    )


class Project:
    """Live objects of a project file: session, store, entities, inputs, feature groups
    and on-demand features.

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
        on_demand: Sequence[OnDemandFeature] = (),
    ) -> None:
        self.config = config
        self.spark = spark
        self.store = store
        self.entities = dict(entities)
        self.inputs = dict(inputs)
        self.feature_groups = dict(feature_groups)
        self._on_demand = list(on_demand)

    def __repr__(self) -> str:
        return f"Project({self.config.name!r}, store={self.store!r})"

    @classmethod
    def load(cls, path: str | os.PathLike[str], spark: SparkSession | None = None) -> Project:
        """:func:`~seeknal_spark.app.config.load_config` then :meth:`from_config`."""
        return cls.from_config(load_config(path), spark=spark)

    @classmethod
    def from_config(cls, config: ProjectConfig, spark: SparkSession | None = None) -> Project:
        """Build the project's objects; imports every transform, generator and on-demand
        function now.

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
            When a transform, generator or on-demand function cannot be imported or a
            definition is invalid (the message names the file and line).
        """
        on_demand = build_on_demand(config.on_demand)  # before any session or Spark job
        spark = spark or session_for(config.spark)
        if config.store.catalog is not None:
            store = FeatureStore(catalog=config.store.catalog, spark=spark)
        else:
            store = FeatureStore(local_path(config.store.path or "."), spark=spark)
        entities = {name: Entity(name, e.join_keys) for name, e in config.entities.items()}
        inputs = {name: input_source(i) for name, i in config.inputs.items()}
        groups: dict[str, FeatureGroup] = {}
        for name, fg in config.feature_groups.items():
            transform: Any
            if fg.transform is not None:
                transform = import_callable(
                    fg.transform, fg.at("transform"), f"feature_groups.{name}.transform"
                )
            else:
                transform = fg.sql  # None for an event group storing its single input as is
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
                    aggregations=fg.aggregations,
                )
            except (ConfigurationError, TypeError, ValueError) as exc:
                raise ConfigurationError(f"{fg.where}: feature_groups.{name}: {exc}") from None
        return cls(config, spark, store, entities, inputs, groups, on_demand)

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

    def on_demand(self) -> list[OnDemandFeature]:
        """The file's ``on_demand`` features, in file order (empty without the section)."""
        return list(self._on_demand)

    def historical(self, **options: Any) -> HistoricalFeatures:
        """:class:`~seeknal_spark.training.historical.HistoricalFeatures` over :meth:`lookups`
        and :meth:`on_demand`.

        The spine time column is ``training.timestamp_col`` (``prediction_time`` without a
        training section) and ``inclusive`` is ``training.inclusive`` (default true), so
        training, serving and parity checks of the file agree; ``options`` go to the
        constructor.
        """
        if self.config.training is not None:
            options.setdefault("timestamp_col", self.config.training.timestamp_col)
            options.setdefault("inclusive", self.config.training.inclusive)
        options.setdefault("on_demand", self.on_demand())
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
        """The online sink of the file (``online.sink`` unless ``kind`` names another)."""
        return sink_from_config(self.config.online, kind, self.config.source or "")

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
        allow_empty: bool = False,
        on_window: Callable[[WindowResult], None] | None = None,
    ) -> MaterializeSummary:
        """Backfill the named groups (all by default, in file order); see :func:`materialize_group`.

        ``version`` overrides each group's version from the file.
        """
        began = time.monotonic()
        names = list(feature_groups or self.feature_groups)
        groups = [self.feature_group(n) for n in names]  # fail before writing anything
        windows: list[WindowResult] = []
        for group in groups:
            windows += materialize_group(
                group,
                start,
                end,
                interval=interval,
                version=version or self.default_version(group.name),
                mode=mode,
                force=force,
                allow_empty=allow_empty,
                on_window=on_window,
            )
        return MaterializeSummary(tuple(windows), time.monotonic() - began)

    def train(
        self,
        *,
        spine: str | None = None,
        spine_format: str | None = None,
        output: str | None = None,
        fmt: str | None = None,
        manifest: str | None = None,
        feature_start_time: datetime | None = None,
    ) -> TrainResult:
        """Write a point-in-time training set with its ``.manifest.json`` and ``.schema.json``.

        Parameters
        ----------
        spine:
            An input name of the file or a path (default: ``training.spine``).
        spine_format:
            Format of a spine path (default: the input-format policy).
        output:
            Where to write the training set (default: ``training.output``).
        fmt:
            ``parquet`` or ``delta`` (default: ``training.format``).
        manifest:
            A ``.manifest.json`` to rebuild exactly (same Delta versions).
        feature_start_time:
            Ignore feature rows older than this.
        """
        training = self.config.training
        spine_name = spine or (training.spine if training is not None else None)
        output = output or (training.output if training is not None else None)
        if spine_name is None or output is None:
            raise ConfigurationError(
                "train needs a spine and an output: pass --spine and --output or add a "
                "training: section (spine, timestamp_col, output) to "
                f"{self.config.source or 'the project file'}"
            )
        as_of = None if manifest is None else read_manifest(manifest)
        hist = self.historical()
        if spine_name in self.inputs:
            spine_df = self.read_input(spine_name)
        else:
            spine_df = read_path(self.spark, spine_name, spine_format, what="--spine")
        return write_training_set(
            hist,
            spine_df,
            output=output,
            fmt=fmt or (training.format if training is not None else "parquet"),
            project=self.config.name,
            spine_name=spine_name,
            label_col=training.label_col if training is not None else None,
            as_of=as_of,
            feature_start_time=feature_start_time,
        )

    def serve(
        self,
        *,
        table: str | None = None,
        sink: str | None = None,
        as_of: datetime | None = None,
        expire_keys: bool = False,
        progress: bool | None = None,
    ) -> ServeResult:
        """Export the lookups' snapshot as of ``as_of`` (default now) to the online table.

        ``table`` defaults to ``online.table``, ``sink`` (``embedded`` or ``redis``) to
        ``online.sink``.
        """
        began = time.monotonic()
        name = self.online_table_name(table)
        target = self.online_sink(sink)
        served = serve_snapshot(
            self.historical(),
            name=name,
            sink=target,
            as_of=as_of,
            expire_keys=expire_keys,
            progress=progress,
        )
        meta = served.metadata
        return ServeResult(
            project=self.config.name,
            table=name,
            sink=target.describe(),
            generation=str(meta["generation"]),
            as_of=str(meta["as_of"]),
            keys_written=sum(int(lk["keys_written"]) for lk in meta["lookups"]),
            lookups={
                lk["feature_group"]: {
                    "version": lk["version"],
                    "keys": lk["keys_written"],
                    "delta_version": lk["delta_version"],
                }
                for lk in meta["lookups"]
            },
            features=tuple(served.feature_names),
            duration_s=round(time.monotonic() - began, 3),
        )

    def parity(
        self,
        schema: str,
        *,
        table: str | None = None,
        sink: str | None = None,
        values: bool = False,
        sample: int | None = None,
    ) -> ParityResult:
        """The parity gate: can the online table serve the model of ``schema`` (a file)?

        The table is opened with the file's on-demand functions, which must match the
        model's too. With ``values``, the served values are compared with the
        point-in-time join of the project's lookups, and the on-demand features on a
        sample of the training spine's rows (``training.spine``). Call
        :meth:`ParityResult.raise_for_problems` to fail.
        """
        source = self.config.source or "the project file"
        requests = None
        if values and self._on_demand:
            training = self.config.training
            if training is None:
                raise ConfigurationError(
                    f"parity with values compares the on-demand features "
                    f"{[f.name for f in self._on_demand]} on request rows: add a training: "
                    f"section whose spine holds the join keys and request fields to {source}"
                )
            requests = functools.partial(self.read_input, training.spine)
        name = self.online_table_name(table)
        online = OnlineTable.open(name, sink=self.online_sink(sink), on_demand=self._on_demand)
        return check_parity(
            schema,
            online,
            historical=self.historical if values else None,
            requests=requests,
            sample=sample,
            on_demand_from=f"the on_demand: section of {source}",
        )

    def drift(
        self,
        reference: str,
        current: str,
        out: str,
        *,
        features: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        fmt: str | None = None,
        thresholds: Mapping[str, float] | None = None,
    ) -> DriftResult:
        """Drift of ``current`` against ``reference`` (paths), HTML report to ``out``."""
        return run_drift(
            self.spark,
            reference,
            current,
            out,
            features=features,
            exclude=exclude,
            fmt=fmt,
            thresholds=thresholds,
        )
