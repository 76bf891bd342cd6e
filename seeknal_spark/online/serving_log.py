"""Serving-side logging of the feature vectors really served, for drift monitoring.

A serving process (no Spark needed) appends what it served with :class:`ServingLogger`;
the monitoring job reads it back with :func:`read_serving_log` and compares it with the
training set (:func:`seeknal_spark.monitoring.drift.compute_drift`).

See :class:`ServingLogger` for a running example.

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

Failures. A write that fails with an I/O error (full disk, a lost mount) is retried a few
times; rows it still cannot write stay buffered for the next flush (oldest dropped only
beyond ``max_pending``), all counted in :attr:`ServingLogger.metrics`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from seeknal_spark.online.log_files import (
    REQUEST_DATE_COL,
    REQUEST_ID_COL,
    REQUEST_TIME_COL,
    SUFFIXES,
    Format,
    arrow_type,
    plain,
    pyarrow_module,
    utc,
    write_jsonl,
    write_parquet,
)
from seeknal_spark.online.serving_log_read import read_serving_log

if TYPE_CHECKING:
    import pyarrow as pa

Record = dict[str, Any]

__all__ = [
    "REQUEST_DATE_COL",
    "REQUEST_ID_COL",
    "REQUEST_TIME_COL",
    "ServingLogMetrics",
    "ServingLogger",
    "read_serving_log",
]

_log = logging.getLogger(__name__)

_RESERVED = (REQUEST_TIME_COL, REQUEST_ID_COL, REQUEST_DATE_COL)
_SUFFIX = SUFFIXES


@dataclass(frozen=True)
class ServingLogMetrics:
    """Counters of a :class:`ServingLogger` (since it was created).

    Parameters
    ----------
    rows_written, files_written:
        Rows and files that reached the log.
    rows_pending:
        Rows buffered and not yet written (including rows kept after a failed write).
    write_failures:
        Writes that still failed after their retries (their rows were kept).
    write_retries:
        Attempts repeated after an I/O error.
    rows_dropped:
        Rows lost: values that cannot be written at all, or the oldest pending rows beyond
        ``max_pending``.
    """

    rows_written: int
    files_written: int
    rows_pending: int
    write_failures: int
    write_retries: int
    rows_dropped: int


class _UnwrittenError(Exception):
    """A write stopped part-way: ``records`` are the rows not written."""

    def __init__(self, records: list[Record], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.records = records
        self.cause = cause


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
    max_attempts:
        Tries per write when it fails with an I/O error (``OSError``), with a doubling
        pause from ``retry_delay`` seconds.
    max_pending:
        At most this many unwritten rows are kept; beyond it the oldest are dropped (and
        counted), so a log that cannot be written never exhausts the server's memory.

    Notes
    -----
    Serving never fails because of logging: a write inside :meth:`log` or the timer that
    still fails after its retries is logged at ERROR and its rows stay buffered for the
    next flush. Rows whose values cannot be written at all (not JSON-serialisable) are
    dropped and counted. :meth:`flush` and :meth:`close` raise instead (keeping the rows).
    See :attr:`metrics`.

    Examples
    --------
    >>> import tempfile
    >>> with ServingLogger(tempfile.mkdtemp(), flush_seconds=None, format="jsonl") as log:
    ...     log.log([{"customer_id": "a"}], [{"total": 5.0}])
    >>> log.metrics.rows_written, log.metrics.rows_pending
    (1, 0)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        flush_every: int = 1000,
        flush_seconds: float | None = 60.0,
        *,
        format: Format = "parquet",
        schema: Mapping[str, Any] | None = None,
        max_attempts: int = 3,
        retry_delay: float = 0.05,
        max_pending: int = 100_000,
    ) -> None:
        if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"flush_every must be an integer >= 1, got {flush_every!r}")
        if flush_seconds is not None and not flush_seconds > 0:
            raise ValueError(f"flush_seconds must be > 0 or None, got {flush_seconds!r}")
        if format not in _SUFFIX:
            raise ValueError(f"format must be 'parquet' or 'jsonl', got {format!r}")
        if max_attempts < 1 or retry_delay < 0 or max_pending < 1:
            raise ValueError(
                "max_attempts and max_pending must be >= 1 and retry_delay >= 0, got "
                f"{max_attempts!r}, {max_pending!r}, {retry_delay!r}"
            )
        self.path = Path(path)
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.format: Format = format
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.max_pending = max_pending
        self._arrow_types: dict[str, pa.DataType] = {}
        if format == "parquet":
            pa_mod = pyarrow_module()
            self._arrow_types = {k: arrow_type(pa_mod, k, v) for k, v in (schema or {}).items()}
            self._arrow_types[REQUEST_TIME_COL] = pa_mod.timestamp("us", tz="UTC")
            self._arrow_types[REQUEST_ID_COL] = pa_mod.string()
        elif schema:
            raise ValueError("schema= applies to format='parquet' only")
        self.path.mkdir(parents=True, exist_ok=True)
        self._buffer: list[Record] = []
        self._lock = threading.Lock()  # guards the buffer and the counters
        self._idle = threading.Condition(self._lock)  # notified when a taken batch is done
        self._inflight = 0  # batches taken from the buffer and not yet written
        self._write_lock = threading.Lock()  # one file write at a time
        self._seq = 0
        self._closed = False
        self.rows_written = 0
        self.dropped_rows = 0
        self.files_written = 0
        self.write_failures = 0
        self.write_retries = 0
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

    @property
    def metrics(self) -> ServingLogMetrics:
        """The counters now: rows written, pending, failed writes, retries, dropped rows."""
        with self._lock:
            return ServingLogMetrics(
                rows_written=self.rows_written,
                files_written=self.files_written,
                rows_pending=len(self._buffer),
                write_failures=self.write_failures,
                write_retries=self.write_retries,
                rows_dropped=self.dropped_rows,
            )

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
        when = utc(request_time) if request_time is not None else datetime.now(timezone.utc)
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
                    record[name] = plain(value)
            records.append(record)
        with self._lock:
            if self._closed:
                raise ValueError(
                    f"the serving log at {self.path} is closed: create a new ServingLogger"
                )
            self._buffer.extend(records)
            batch = self._take() if len(self._buffer) >= self.flush_every else None
        if batch:
            self._write_or_keep(batch)

    def flush(self) -> None:
        """Write every buffered row now.

        Raises
        ------
        OSError
            When the write still fails after its retries; the rows stay buffered.
        """
        with self._lock:
            batch = self._take()
        if batch:
            try:
                self._write_retrying(batch)
            finally:
                self._done()

    def close(self) -> None:
        """Stop the timer thread and flush; later :meth:`log` calls raise.

        Idempotent; after a failed flush (it raises) calling it again retries the rows.
        """
        with self._lock:
            already = self._closed
            self._closed = True
            if already and not self._buffer:
                return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._idle:  # wait for writes that log() calls in other threads started
            self._idle.wait_for(lambda: self._inflight == 0)

    def _take(self) -> list[Record]:
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
                self._write_or_keep(batch)

    def _write_or_keep(self, batch: list[Record]) -> None:
        """Write ``batch`` without raising: rows that still fail stay buffered."""
        try:
            self._write_retrying(batch)
        except OSError:
            pass  # counted and kept by _write_retrying
        except Exception:
            with self._lock:
                self.dropped_rows += len(batch)
            _log.exception(
                "serving log %s: could not write %d rows; they are dropped", self.path, len(batch)
            )
        finally:
            self._done()

    def _write_retrying(self, batch: list[Record]) -> None:
        """Write ``batch``, retrying I/O errors; rows still unwritten go back to the buffer
        (then the error is raised). Other errors (values that cannot be written) raise."""
        pending = batch
        for attempt in range(self.max_attempts):
            if attempt:
                with self._lock:
                    self.write_retries += 1
                time.sleep(self.retry_delay * 2 ** (attempt - 1))
            try:
                self._write(pending)
                return
            except _UnwrittenError as exc:
                pending = exc.records
                if not isinstance(exc.cause, OSError):
                    raise exc.cause from None
                error = exc.cause
        self._keep(pending, error)
        raise error

    def _keep(self, records: list[Record], error: BaseException) -> None:
        """Put unwritten rows back in front of the buffer (newer rows after them)."""
        with self._lock:
            self.write_failures += 1
            self._buffer[:0] = records
            over = len(self._buffer) - self.max_pending
            if over > 0:
                del self._buffer[:over]
                self.dropped_rows += over
        _log.error(
            "serving log %s: could not write %d rows (%s); kept for the next flush%s",
            self.path,
            len(records),
            error,
            f", {over} oldest dropped (max_pending={self.max_pending})" if over > 0 else "",
        )

    def _write(self, batch: list[Record]) -> None:
        """One file per UTC date; raises :class:`_UnwrittenError` with the rows not written."""
        by_date: dict[str, list[Record]] = {}
        for record in batch:
            by_date.setdefault(record[REQUEST_TIME_COL].date().isoformat(), []).append(record)
        days = sorted(by_date)
        with self._write_lock:
            for n, day in enumerate(days):
                records = by_date[day]
                try:
                    name = self._write_file(day, records)
                except Exception as exc:
                    raise _UnwrittenError([r for d in days[n:] for r in by_date[d]], exc) from exc
                with self._lock:
                    self.rows_written += len(records)
                    self.files_written += 1
                _log.debug("serving log: wrote %d rows to %s", len(records), name)

    def _write_file(self, day: str, records: list[Record]) -> Path:
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
                write_parquet(tmp, records, self._arrow_types)
            else:
                write_jsonl(tmp, records)
            os.replace(tmp, folder / name)
        finally:
            tmp.unlink(missing_ok=True)
        return folder / name
