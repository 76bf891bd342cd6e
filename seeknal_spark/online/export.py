"""The serving export: write point-in-time snapshots of feature lookups to an online sink.

It takes typed :class:`Snapshot` objects and knows nothing of how they were computed
(``HistoricalFeatures.serve`` builds them: :mod:`seeknal_spark.training.serve`). For each
lookup (one feature group version, one namespace), the snapshot DataFrame (one
row per entity key with its latest feature values as of ``as_of``) is encoded and written
**on the executors** with ``mapInArrow`` (one sink writer per task, pipelined batches);
only one count per task comes back to the driver. The steps:

1. ``sink.begin`` registers a new generation (older snapshots keep being served), and a
   driver thread heartbeats it while the export runs.
2. Every lookup is written into that generation.
3. ``sink.commit`` stores the metadata (schema, versions, as_of) and flips the table's
   pointer to the new generation in one atomic step.
4. ``sink.cleanup`` removes the previous generation and generations left by killed
   exports (heartbeat older than the sink's ``orphan_after``).

An export that fails or is killed before step 3 leaves the previous snapshot served.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from seeknal_spark._executors import require_package_on_executors
from seeknal_spark._progress import Progress
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.definitions.on_demand import OnDemandFeature
from seeknal_spark.errors import (
    ColumnTypeError,
    MissingColumnError,
    OnlineStoreError,
    SchemaError,
    SeeknalError,
)
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.encoding import KEY_TYPES, ValueCodec, encode_rows
from seeknal_spark.online.sink import OnlineSink
from seeknal_spark.online.table import OnlineTable

__all__ = ["Snapshot", "export_snapshots"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    """The rows of one lookup to export: one row per entity key.

    Parameters
    ----------
    feature_group, version:
        Where the features come from (recorded in the metadata).
    key_columns:
        The entity's join-key columns.
    dataframe:
        Key columns plus feature columns, one row per key.
    features:
        Feature columns to serve, in order (default: every non-key column).
    ttl:
        The lookup's TTL (recorded; with ``expire_keys`` keys expire at ``as_of + ttl``).
    delta_version, transform_hash:
        Provenance recorded in the metadata for parity checks.
    defaults:
        ``{feature: value}`` served for keys the snapshot lacks (or whose values
        expired), as the point-in-time join fills unmatched rows; other features give
        ``None``.
    extra:
        More JSON-safe provenance merged into the lookup's metadata.
    """

    feature_group: str
    version: str
    key_columns: tuple[str, ...]
    dataframe: DataFrame
    features: tuple[str, ...] | None = None
    ttl: timedelta | None = None
    delta_version: int | None = None
    transform_hash: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


def _utc(ts: datetime | None) -> datetime:
    if ts is None:
        return datetime.now(timezone.utc)
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


class _Heartbeat:
    """Keeps an uncommitted generation alive while the driver works."""

    def __init__(self, sink: OnlineSink, table: str, generation: str) -> None:
        self._stop = threading.Event()
        self._args = (sink, table, generation)
        self._every = max(0.2, sink.orphan_after / 4)
        self._thread = threading.Thread(target=self._run, name="seeknal-heartbeat", daemon=True)

    def _run(self) -> None:
        sink, table, generation = self._args
        while not self._stop.wait(self._every):
            try:
                sink.heartbeat(table, generation)
            except SeeknalError as exc:  # the write itself will report the outage
                logger.warning("heartbeat of %s generation %s failed: %s", table, generation, exc)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _partition_writer(
    sink: OnlineSink,
    table: str,
    generation: str,
    namespace: int,
    key_types: list[T.DataType],
    feature_types: list[T.DataType],
    expire_at_ms: int | None,
) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    nk = len(key_types)

    def write(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        writer = sink.open_writer(table, generation)
        written = 0
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                cols = batch.columns
                keys = encode_rows(cols[:nk], key_types)
                if feature_types:
                    values = encode_rows(cols[nk:], feature_types)
                else:
                    values = pa.array(["[]"] * len(keys), pa.string())
                writer.write(namespace, keys, values, expire_at_ms)
                written += len(keys)
        except BaseException:
            try:  # release the connection; the error above is the one to report
                writer.close()
            except Exception as close_exc:
                logger.debug("closing a failed export writer: %s", close_exc)
            raise
        writer.close()
        yield pa.RecordBatch.from_arrays([pa.array([written], pa.int64())], names=["keys_written"])

    return write


def _check(snapshot: Snapshot) -> tuple[list[str], T.StructType, T.StructType]:
    df = snapshot.dataframe
    fields = {f.name: f for f in df.schema.fields}
    for col in snapshot.key_columns:
        if col not in fields:
            raise MissingColumnError(
                f"the snapshot of {snapshot.feature_group!r} lacks join-key column {col!r}; "
                f"it has {sorted(fields)}"
            )
        if not isinstance(fields[col].dataType, KEY_TYPES):
            raise ColumnTypeError(
                f"join-key column {col!r} of {snapshot.feature_group!r} is "
                f"{fields[col].dataType.simpleString()}: use string, integer, boolean, date or "
                "timestamp keys"
            )
    features = (
        list(snapshot.features)
        if snapshot.features is not None
        else [c for c in df.columns if c not in snapshot.key_columns]
    )
    for col in features:
        if col not in fields:
            raise MissingColumnError(
                f"the snapshot of {snapshot.feature_group!r} lacks feature column {col!r}"
            )
    keys = T.StructType([fields[c] for c in snapshot.key_columns])
    feats = T.StructType([fields[c] for c in features])
    return features, keys, feats


def _spark_failure(exc: Exception, table: str, sink: OnlineSink) -> Exception:
    """The typed error of a failed export job: the sink's own message when an executor's
    writer raised :class:`OnlineStoreError`, else the cause's last line."""
    if isinstance(exc, SeeknalError):
        return exc
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    ours = [ln for ln in lines if "OnlineStoreError:" in ln]
    if ours:
        detail = ours[-1].split("OnlineStoreError:", 1)[-1].strip()
    else:
        causes = [ln for ln in lines if "Error" in ln or "Exception" in ln]
        detail = (causes or lines or [type(exc).__name__])[-1]
    return OnlineStoreError(
        f"exporting online table {table!r} to {sink.describe()} failed: {detail} "
        "(the previous snapshot is still served; fix the cause and export again)"
    )


def export_snapshots(
    snapshots: Sequence[Snapshot],
    *,
    name: str,
    sink: OnlineSink | None = None,
    as_of: datetime | None = None,
    expire_keys: bool = False,
    manifest: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    on_demand: Sequence[OnDemandFeature] = (),
) -> OnlineTable:
    """Write snapshots as a new generation of online table ``name`` and serve it.

    Parameters
    ----------
    snapshots:
        One :class:`Snapshot` per lookup; feature names must be unique across them.
    name:
        The online table (letters, digits, underscores).
    sink:
        Where to write (default: :class:`~seeknal_spark.online.embedded.EmbeddedSink`).
    as_of:
        The moment the snapshots describe (recorded; default now, UTC).
    expire_keys:
        When true, keys of a lookup with a TTL expire at ``as_of + ttl``: if no newer
        export replaces them in time, they read as missing instead of stale.
    manifest:
        Provenance of the snapshots (e.g. the training manifest's ``to_dict()``), stored
        with the table as JSON.
    progress:
        Print progress lines to stderr (default: only when stderr is a terminal).
    on_demand:
        On-demand features the table computes at request time: their identity (name,
        inputs, output type, mode, code hash) is stored with the snapshot and the
        returned table runs their functions in ``get_features``.

    Returns
    -------
    OnlineTable
        The table, now serving the new generation.

    Raises
    ------
    SchemaError
        Missing key/feature columns, unsupported key types, duplicate feature names.
    OnlineStoreError
        The sink failed; the previous snapshot is still served.
    """
    name = validate_name(name, "online table")
    sink = sink if sink is not None else EmbeddedSink()
    as_of_utc = _utc(as_of)
    show = sys.stderr.isatty() if progress is None else progress
    if not snapshots:
        raise ValueError("export_snapshots needs at least one snapshot")

    checked = [_check(s) for s in snapshots]
    seen: dict[str, str] = {}
    for snap, (features, _, _) in zip(snapshots, checked, strict=True):
        for f in features:
            if f in seen:
                raise SchemaError(
                    f"feature {f!r} comes from both {seen[f]!r} and {snap.feature_group!r}: "
                    "rename one so every served feature name is unique"
                )
            seen[f] = snap.feature_group
    for od in on_demand:
        if od.name in seen:
            raise SchemaError(
                f"on-demand feature {od.name!r} has the name of a feature of "
                f"{seen[od.name]!r}: rename one so every served feature name is unique"
            )
        seen[od.name] = "on-demand"

    spark = snapshots[0].dataframe.sparkSession
    sink.check_session(spark)  # e.g. a local folder with executors on other hosts
    require_package_on_executors(spark)  # the writer below is unpickled on the executors
    executor_sink = sink.for_executors(spark)  # e.g. without a password they can read
    started = time.monotonic()
    generation = sink.begin(name, len(snapshots))
    logger.info("exporting online table %r generation %s to %s", name, generation, sink.describe())
    lookups_meta: list[dict[str, Any]] = []
    try:
        bar = Progress(len(snapshots), label=f"export {name}", unit="lookups", enabled=show)
        with _Heartbeat(sink, name, generation), bar:
            pairs = enumerate(zip(snapshots, checked, strict=True))
            for ns, (snap, (features, key_schema, feat_schema)) in pairs:
                t0 = time.monotonic()
                expire_at = as_of_utc + snap.ttl if (expire_keys and snap.ttl) else None
                expire_ms = None if expire_at is None else int(expire_at.timestamp() * 1000)
                fn = _partition_writer(
                    executor_sink,
                    name,
                    generation,
                    ns,
                    [f.dataType for f in key_schema.fields],
                    [f.dataType for f in feat_schema.fields],
                    expire_ms,
                )
                df = snap.dataframe.select(*snap.key_columns, *features)
                try:
                    # one tiny count per task comes back; no shuffle for a sum
                    counts = df.mapInArrow(fn, "keys_written long").collect()
                except Exception as exc:
                    raise _spark_failure(exc, name, sink) from exc
                written = sum(int(r[0]) for r in counts)
                seconds = time.monotonic() - t0
                bar.advance(rows=written)
                logger.info(
                    "lookup %d/%d %s %s: %d keys in %.1f s",
                    ns + 1,
                    len(snapshots),
                    snap.feature_group,
                    snap.version,
                    written,
                    seconds,
                )
                lookups_meta.append(
                    {
                        "namespace": ns,
                        "feature_group": snap.feature_group,
                        "version": snap.version,
                        "join_keys": list(snap.key_columns),
                        "key_schema": key_schema.jsonValue(),
                        "feature_schema": feat_schema.jsonValue(),
                        "ttl_seconds": None if snap.ttl is None else snap.ttl.total_seconds(),
                        "expire_at": None if expire_at is None else expire_at.isoformat(),
                        "keys_written": written,
                        "delta_version": snap.delta_version,
                        "transform_hash": snap.transform_hash,
                        "defaults": _defaults(snap, features, feat_schema),
                        **_jsonable(dict(snap.extra)),
                    }
                )
            metadata = {
                "format": FORMAT_VERSION,
                "table": name,
                "exported_at": datetime.now(timezone.utc).isoformat(),
                "as_of": as_of_utc.isoformat(),
                "lookups": lookups_meta,
                "features": {
                    **{
                        f.name: f.dataType.simpleString()
                        for _, _, feat_schema in checked
                        for f in feat_schema.fields
                    },
                    **{od.name: od.output_type for od in on_demand},
                },
                "on_demand": [od.describe() for od in on_demand],
                "manifest": _jsonable(manifest),
                "sink": sink.describe(),
            }
            previous = sink.commit(name, generation, metadata)
    except BaseException:
        try:
            sink.abort(name, generation)
        except Exception as cleanup_exc:  # keep the original error
            logger.warning("could not remove failed generation %s: %s", generation, cleanup_exc)
        raise
    try:
        removed = sink.cleanup(name)
    except SeeknalError as exc:  # the new snapshot is served; leftovers go next time
        logger.warning("cleanup of %r after export failed: %s", name, exc)
        removed = []
    seconds = time.monotonic() - started
    keys = sum(m["keys_written"] for m in lookups_meta)
    logger.info(
        "online table %r now serves generation %s (was %s): %d keys in %.1f s; removed %s",
        name,
        generation,
        previous,
        keys,
        seconds,
        removed or "nothing",
    )
    if show:
        _say(f"online table {name}: generation {generation} served, {keys:,} keys, {seconds:.1f} s")
    return OnlineTable(name, sink, on_demand=on_demand)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _defaults(snap: Snapshot, features: list[str], schema: T.StructType) -> str | None:
    """The lookup's defaults as one encoded value row (``None`` when it has none)."""
    if not snap.defaults:
        return None
    unknown = sorted(set(snap.defaults) - set(features))
    if unknown:
        raise SchemaError(
            f"defaults of {snap.feature_group!r} name columns that are not served: {unknown}"
        )
    codec = ValueCodec([f.dataType for f in schema.fields])
    return codec.encode([snap.defaults.get(f) for f in features])


def _jsonable(value: Any) -> Any:
    """Turn a manifest into JSON-safe values (datetimes and other objects as strings)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    return str(value)
