"""Serving-side logging of the feature vectors really served, for drift monitoring.

A serving process (no Spark needed) appends what it served with :class:`ServingLogger`;
the monitoring job reads it back with :func:`read_serving_log` and compares it with the
training set (:func:`seeknal_spark.monitoring.drift.compute_drift`).

>>> with ServingLogger("/var/log/churn_served") as logger:                  # doctest: +SKIP
...     rows = table.get_features(keys)
...     logger.log(keys, rows)
>>> served = read_serving_log(spark, "/var/log/churn_served")              # doctest: +SKIP

Layout. One row per served key: ``request_time`` (UTC timestamp), ``request_id`` (one
id per :meth:`ServingLogger.log` call), the key columns, then the feature columns. Files
go to ``<path>/request_date=YYYY-MM-DD/`` (the UTC date of ``request_time``; Spark reads
it as a ``request_date`` partition column), one new file per flush and date, named
``part-<utc time>-<pid>-<seq>-<random>.parquet`` (or ``.jsonl``). Each file is written to
a hidden temporary name in the same folder and renamed into place, so a reader never sees
a half-written file (Spark skips names starting with ``.``).

Types. Parquet keeps types: a column's type is taken from the first batch that holds a
value for it (ints and floats together become float) and kept for later files of the same
logger; a column that is all-null in a batch and never typed yet is left out of that file
(it reads back as null). Pin types with ``schema={"amount": "double", ...}`` when a
column's first values may be ambiguous. JSON lines store timestamps and dates as ISO-8601
strings; :func:`read_serving_log` turns ``request_time`` back into a timestamp.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from seeknal_spark.errors import ConfigurationError, NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "REQUEST_DATE_COL",
    "REQUEST_ID_COL",
    "REQUEST_TIME_COL",
    "ServingLogger",
    "read_serving_log",
]

_log = logging.getLogger(__name__)

REQUEST_TIME_COL = "request_time"
REQUEST_ID_COL = "request_id"
REQUEST_DATE_COL = "request_date"
_RESERVED = (REQUEST_TIME_COL, REQUEST_ID_COL, REQUEST_DATE_COL)
_SUFFIX = {"parquet": ".parquet", "jsonl": ".jsonl"}
Format = Literal["parquet", "jsonl"]


def _utc(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"request_time must be a datetime, got {type(value).__name__}")
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def _plain(value: Any) -> Any:
    """numpy scalars to Python values; everything else unchanged."""
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        return item()
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    plain = _plain(value)
    if plain is not value:
        return plain
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} to a JSON serving log")


class ServingLogger:
    """A thread-safe buffered writer of served feature vectors to local files.

    Parameters
    ----------
    path:
        Folder of the log (created if needed).
    flush_every:
        Write a file once this many rows are buffered (the :meth:`log` call that fills the
        buffer writes it, in its own thread).
    flush_seconds:
        Also write buffered rows at least this often, from a background thread; ``None``
        turns time-based flushing off.
    format:
        ``"parquet"`` (default, typed, needs pyarrow) or ``"jsonl"``.
    schema:
        Optional column -> type pins for Parquet (``"double"``, ``"bigint"``, ``"string"``,
        ``"boolean"``, ``"timestamp"``, ``"date"``, or a ``pyarrow.DataType``).

    Notes
    -----
    A failed write inside :meth:`log` (full disk, a value of the wrong type) is logged at
    ERROR and its rows are dropped and counted in :attr:`dropped_rows`, so serving never
    fails because of logging. :meth:`flush` and :meth:`close` raise instead.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        flush_every: int = 1000,
        flush_seconds: float | None = 60.0,
        *,
        format: Format = "parquet",
        schema: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"flush_every must be an integer >= 1, got {flush_every!r}")
        if flush_seconds is not None and not flush_seconds > 0:
            raise ValueError(f"flush_seconds must be > 0 or None, got {flush_seconds!r}")
        if format not in _SUFFIX:
            raise ValueError(f"format must be 'parquet' or 'jsonl', got {format!r}")
        self.path = Path(path)
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.format: Format = format
        self._arrow_types: dict[str, pa.DataType] = {}
        if format == "parquet":
            pa_mod = _pyarrow()
            self._arrow_types = {k: _arrow_type(pa_mod, k, v) for k, v in (schema or {}).items()}
            self._arrow_types[REQUEST_TIME_COL] = pa_mod.timestamp("us", tz="UTC")
            self._arrow_types[REQUEST_ID_COL] = pa_mod.string()
        elif schema:
            raise ValueError("schema= applies to format='parquet' only")
        self.path.mkdir(parents=True, exist_ok=True)
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards the buffer and the counters
        self._idle = threading.Condition(self._lock)  # notified when a taken batch is done
        self._inflight = 0  # batches taken from the buffer and not yet written
        self._write_lock = threading.Lock()  # one file write at a time
        self._seq = 0
        self._closed = False
        self.rows_written = 0
        self.dropped_rows = 0
        self.files_written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if flush_seconds is not None:
            self._thread = threading.Thread(
                target=self._run_timer,
                args=(flush_seconds,),
                name="seeknal-serving-log",
                daemon=True,
            )
            self._thread.start()

    def __enter__(self) -> ServingLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def log(
        self,
        keys: Sequence[Mapping[str, Any]],
        rows: Sequence[Mapping[str, Any] | None],
        request_time: datetime | None = None,
    ) -> None:
        """Buffer the vectors served for one request: ``rows[i]`` was served for ``keys[i]``.

        Parameters
        ----------
        keys:
            One mapping of join-key columns per served entity.
        rows:
            The feature values served for each key, in the same order (``None`` or an empty
            mapping when nothing was served for that key).
        request_time:
            When the request was served (default: now, UTC; naive values are taken as UTC).

        Raises
        ------
        ValueError
            ``keys`` and ``rows`` differ in length, a column uses a reserved name
            (``request_time``, ``request_id``, ``request_date``), or the logger is closed.
        """
        if len(keys) != len(rows):
            raise ValueError(
                f"log() got {len(keys)} keys but {len(rows)} feature rows: pass "
                "one row per key, in the same order"
            )
        when = _utc(request_time) if request_time is not None else datetime.now(timezone.utc)
        request_id = uuid.uuid4().hex
        records = []
        for key, row in zip(keys, rows, strict=True):
            record: dict[str, Any] = {REQUEST_TIME_COL: when, REQUEST_ID_COL: request_id}
            for name, value in (*key.items(), *(row or {}).items()):
                if name in _RESERVED:
                    raise ValueError(
                        f"column {name!r} is reserved by the serving log "
                        f"({', '.join(_RESERVED)}): rename the key or feature"
                    )
                if name not in record:  # a key repeated in the row keeps the key's value
                    record[name] = _plain(value)
            records.append(record)
        with self._lock:
            if self._closed:
                raise ValueError(
                    f"the serving log at {self.path} is closed: create a new ServingLogger"
                )
            self._buffer.extend(records)
            batch = self._take() if len(self._buffer) >= self.flush_every else None
        if batch:
            self._write_or_drop(batch)

    def flush(self) -> None:
        """Write every buffered row now (raises when the write fails)."""
        with self._lock:
            batch = self._take()
        if batch:
            try:
                self._write(batch)
            finally:
                self._done()

    def close(self) -> None:
        """Stop the timer thread and flush; later :meth:`log` calls raise. Idempotent."""
        with self._lock:
            already = self._closed
            self._closed = True
        if already:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._idle:  # wait for writes that log() calls in other threads started
            self._idle.wait_for(lambda: self._inflight == 0)

    def _take(self) -> list[dict[str, Any]]:
        """Swap the buffer out (call with the lock held); a non-empty batch is in flight."""
        batch, self._buffer = self._buffer, []
        if batch:
            self._inflight += 1
        return batch

    def _done(self) -> None:
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()

    def _run_timer(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            with self._lock:
                batch = self._take()
            if batch:
                self._write_or_drop(batch)

    def _write_or_drop(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._write(batch)
        except Exception:
            with self._lock:
                self.dropped_rows += len(batch)
            _log.exception(
                "serving log %s: could not write %d rows; they are dropped", self.path, len(batch)
            )
        finally:
            self._done()

    def _write(self, batch: list[dict[str, Any]]) -> None:
        by_date: dict[str, list[dict[str, Any]]] = {}
        for record in batch:
            by_date.setdefault(record[REQUEST_TIME_COL].date().isoformat(), []).append(record)
        with self._write_lock:
            for day, records in sorted(by_date.items()):
                folder = self.path / f"{REQUEST_DATE_COL}={day}"
                folder.mkdir(parents=True, exist_ok=True)
                self._seq += 1
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
                name = (
                    f"part-{stamp}-{os.getpid()}-{self._seq:06d}-{uuid.uuid4().hex[:8]}"
                    f"{_SUFFIX[self.format]}"
                )
                tmp = folder / f".{name}.tmp"
                try:
                    if self.format == "parquet":
                        self._write_parquet(tmp, records)
                    else:
                        _write_jsonl(tmp, records)
                    os.replace(tmp, folder / name)
                finally:
                    tmp.unlink(missing_ok=True)
                with self._lock:
                    self.rows_written += len(records)
                    self.files_written += 1
                _log.debug("serving log: wrote %d rows to %s", len(records), folder / name)

    def _write_parquet(self, target: Path, records: list[dict[str, Any]]) -> None:
        pa_mod = _pyarrow()
        import pyarrow.parquet as pq

        names = list(dict.fromkeys(name for record in records for name in record))
        arrays, fields = [], []
        for name in names:
            values = [record.get(name) for record in records]
            known = self._arrow_types.get(name)
            array = None
            if known is not None:
                try:
                    array = pa_mod.array(values, type=known)
                except (pa_mod.ArrowException, TypeError, ValueError):
                    _log.warning(
                        "serving log: column %r does not fit its type %s in this "
                        "batch; writing it with an inferred type",
                        name,
                        known,
                    )
            if array is None:
                try:
                    array = pa_mod.array(values)
                except (pa_mod.ArrowException, TypeError, ValueError):
                    _log.warning(
                        "serving log: column %r mixes value types; writing it as strings", name
                    )
                    array = pa_mod.array([None if v is None else str(v) for v in values])
                if pa_mod.types.is_null(array.type):
                    continue  # all null and never typed: leave it out (reads back as null)
                self._arrow_types.setdefault(name, array.type)
            arrays.append(array)
            fields.append(pa_mod.field(name, array.type))
        table = pa_mod.Table.from_arrays(arrays, schema=pa_mod.schema(fields))
        pq.write_table(table, target)


def _write_jsonl(target: Path, records: list[dict[str, Any]]) -> None:
    with open(target, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, default=_json_default, allow_nan=True))
            out.write("\n")
        out.flush()
        os.fsync(out.fileno())


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        raise ConfigurationError(
            "writing a Parquet serving log needs pyarrow: pip install pyarrow "
            "(or use format='jsonl')"
        ) from exc
    return pyarrow


def _arrow_type(pa_mod: Any, column: str, value: Any) -> Any:
    if isinstance(value, pa_mod.DataType):
        return value
    names = {
        "double": pa_mod.float64(),
        "float": pa_mod.float32(),
        "bigint": pa_mod.int64(),
        "long": pa_mod.int64(),
        "int": pa_mod.int32(),
        "integer": pa_mod.int32(),
        "string": pa_mod.string(),
        "boolean": pa_mod.bool_(),
        "bool": pa_mod.bool_(),
        "timestamp": pa_mod.timestamp("us", tz="UTC"),
        "date": pa_mod.date32(),
    }
    if not isinstance(value, str) or value.lower() not in names:
        raise ValueError(
            f"schema type of column {column!r} must be a pyarrow DataType or one "
            f"of {sorted(names)}, got {value!r}"
        )
    return names[value.lower()]


def read_serving_log(
    spark: SparkSession,
    path: str | os.PathLike[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    format: Format | None = None,
) -> DataFrame:
    """The served vectors written by :class:`ServingLogger`, as a Spark DataFrame.

    Parameters
    ----------
    spark:
        The session to read with.
    path:
        The logger's folder (local, or any URI Spark reads when ``format`` is given).
    start, end:
        Keep rows with ``start <= request_time < end`` (naive values are UTC); whole days
        outside are not read (``request_date`` partitions).
    format:
        ``"parquet"`` or ``"jsonl"``; default: detected from the files of a local folder,
        else Parquet.

    Returns
    -------
    DataFrame
        ``request_time`` (timestamp), ``request_id``, the key and feature columns, and
        ``request_date`` (date).

    Raises
    ------
    NotFoundError
        A local folder that holds no log files.
    """
    from pyspark.sql import functions as F

    location = os.fspath(path)
    if format is None:
        format = _detect_format(location)
    elif format not in _SUFFIX:
        raise ValueError(f"format must be 'parquet' or 'jsonl', got {format!r}")
    reader = spark.read.option("mergeSchema", "true").option("basePath", location)
    reader = reader.option("pathGlobFilter", f"*{_SUFFIX[format]}")
    df = reader.parquet(location) if format == "parquet" else reader.json(location)
    df = df.withColumn(REQUEST_TIME_COL, F.col(REQUEST_TIME_COL).cast("timestamp"))
    if start is not None:
        start_utc = _utc(start)
        df = df.where(
            (F.col(REQUEST_DATE_COL) >= F.lit(start_utc.date()))
            & (F.col(REQUEST_TIME_COL) >= F.lit(start_utc))
        )
    if end is not None:
        end_utc = _utc(end)
        df = df.where(
            (F.col(REQUEST_DATE_COL) <= F.lit(end_utc.date()))
            & (F.col(REQUEST_TIME_COL) < F.lit(end_utc))
        )
    rest = [c for c in df.columns if c not in _RESERVED]
    return df.select(REQUEST_TIME_COL, REQUEST_ID_COL, *rest, REQUEST_DATE_COL)


def _detect_format(location: str) -> Format:
    folder = Path(location.removeprefix("file:"))
    if "://" in location and not location.startswith("file:"):
        return "parquet"
    if not folder.is_dir():
        raise NotFoundError(
            f"no serving log at {location}: pass the folder a ServingLogger writes to"
        )
    for fmt, suffix in _SUFFIX.items():
        if next(folder.glob(f"*/*{suffix}"), None) is not None:
            return fmt  # type: ignore[return-value]
    raise NotFoundError(
        f"the serving log folder {location} holds no .parquet or .jsonl "
        "files yet: log and flush (or close) a ServingLogger first"
    )
