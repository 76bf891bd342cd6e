"""The small interface an online key-value store implements to serve seeknal-spark tables.

An online table is a sequence of **generations**. An export asks the sink for a new
generation (:meth:`OnlineSink.begin`), writes every key into it from the Spark executors
(:meth:`OnlineSink.open_writer`, one writer per task), then :meth:`OnlineSink.commit`
stores the generation's metadata and flips the table's pointer to it in one atomic step.
Readers (:meth:`OnlineSink.read`) resolve the pointer and read values of that same
generation in one round trip, so they see the old or the new snapshot whole. After the
flip, :meth:`OnlineSink.cleanup` removes the previous generation and any generation left
behind by an export that died (one whose heartbeat stopped ``orphan_after`` seconds ago).

Keys and values reach the sink already encoded (see :mod:`seeknal_spark.online.encoding`);
a sink only stores bytes under ``(generation, namespace, key)``. A namespace is the
small integer of one lookup (feature group version) in the table.

A sink object is pickled to the executors, so it must hold only plain settings (URLs,
paths); connections are opened lazily and dropped from the pickled state.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

__all__ = ["OnlineSink", "SinkWriter"]


if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SinkWriter(abc.ABC):
    """Writes the keys of one export task into one generation (runs on an executor)."""

    @abc.abstractmethod
    def write(
        self,
        namespace: int,
        keys: pa.Array,
        values: pa.Array,
        expire_at_ms: int | None = None,
    ) -> None:
        """Write ``keys[i] -> values[i]`` into ``namespace``.

        ``keys`` and ``values`` are Arrow string arrays without nulls (UTF-8 JSON texts,
        see :func:`~seeknal_spark.online.encoding.encode_rows`), so a writer can frame
        them for its protocol with vectorised Arrow compute instead of a Python loop.

        The writer may buffer and pipeline; everything must be durable once
        :meth:`close` returns without error. ``expire_at_ms`` (epoch milliseconds) asks
        for the keys to vanish at that moment.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Flush what is buffered, check every reply, release the connection."""


class OnlineSink(abc.ABC):
    """A key-value store that holds online tables as atomically switched generations."""

    #: A generation whose heartbeat is older than this many seconds and that was never
    #: committed is treated as left over by a killed export and removed by cleanup.
    orphan_after: float = 600.0

    @abc.abstractmethod
    def describe(self) -> str:
        """A human-readable location for messages (no password)."""

    # -- export side (driver) ---------------------------------------------------------
    def check_session(self, spark: SparkSession) -> None:  # noqa: B027 (optional hook)
        """Raise when this sink cannot be written by ``spark``'s executors (default: any
        session can); called by the export before any job."""

    def for_executors(self, spark: SparkSession) -> OnlineSink:
        """The copy of this sink that export tasks carry to ``spark``'s executors
        (default: this sink); a sink drops secrets the executors can get another way."""
        return self

    @abc.abstractmethod
    def begin(self, table: str, namespaces: int) -> str:
        """Register and return a new generation id of ``table`` being written.

        ``namespaces`` is the number of lookups the export will write (0 .. n-1).
        """

    @abc.abstractmethod
    def heartbeat(self, table: str, generation: str) -> None:
        """Record that the export writing ``generation`` is still alive."""

    @abc.abstractmethod
    def open_writer(self, table: str, generation: str) -> SinkWriter:
        """Open a writer into ``generation`` (called on executors)."""

    @abc.abstractmethod
    def commit(self, table: str, generation: str, metadata: dict[str, Any]) -> str | None:
        """Store ``metadata`` and point ``table`` at ``generation``, atomically.

        Returns the previously served generation (or ``None``). Raises
        :class:`~seeknal_spark.errors.OnlineStoreError` when ``generation`` is not
        registered any more (it was cleaned up as an orphan).
        """

    @abc.abstractmethod
    def abort(self, table: str, generation: str) -> None:
        """Remove an uncommitted generation (best effort)."""

    @abc.abstractmethod
    def cleanup(self, table: str) -> list[str]:
        """Remove every generation that is neither served nor being written; return them."""

    # -- serving side -----------------------------------------------------------------
    @abc.abstractmethod
    def read(
        self, table: str, requests: Sequence[tuple[int, Sequence[str]]]
    ) -> tuple[str | None, list[list[bytes | None]]]:
        """Read the served generation's values in one round trip.

        Parameters
        ----------
        requests:
            ``(namespace, keys)`` pairs.

        Returns
        -------
        tuple
            The generation that was read (``None`` when the table has none) and, per
            request, the stored value of each key (``None`` when missing or expired).
        """

    @abc.abstractmethod
    def read_metadata(
        self, table: str, generation: str | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """Return ``(generation, metadata)`` of ``generation`` (default: the served one)."""

    @abc.abstractmethod
    def generations(self, table: str) -> list[str]:
        """Every generation of ``table`` holding data (served, being written or orphaned)."""
