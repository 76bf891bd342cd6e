"""The default online sink: one SQLite file per online table, for a single machine.

``EmbeddedSink(path=...)`` keeps table ``T`` in ``<path>/T.sqlite3`` (``path`` defaults to
``$SEEKNAL_ONLINE_DIR`` or ``~/.seeknal/online``). Inside the file::

    seeknal_pointer(id = 1, generation)       the served generation
    seeknal_generations(generation, state, heartbeat, metadata)
    data_<generation>(ns, k, v, x)            one row per lookup and entity key;
                                              x = expiry (epoch ms) or NULL

The flip is one ``UPDATE`` in a transaction; a reader reads the pointer and the data in
one read transaction, which under WAL sees a single committed state, so it never mixes
generations. A killed export leaves an uncommitted ``data_<n>`` table that the next
export's cleanup drops once its heartbeat is older than ``orphan_after`` seconds.

Executors write straight into the file (each task opens its own connection; WAL and a
busy timeout let tasks take turns, each batch one transaction), which is why this sink is
for local Spark (``local[*]``) only: on a cluster, use
:class:`~seeknal_spark.online.redis.RedisSink`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from seeknal_spark._executors import executors_are_local
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import OnlineStoreError
from seeknal_spark.online.sink import OnlineSink, SinkWriter

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["EmbeddedSink", "default_online_dir"]

_BUSY_MS = 60_000
_CHUNK = 500  # keys per IN (...) query, well under SQLite's variable limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seeknal_pointer (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seeknal_generations (
    generation INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL,
    heartbeat REAL NOT NULL,
    metadata TEXT
);
"""


def default_online_dir() -> str:
    """``$SEEKNAL_ONLINE_DIR`` or ``~/.seeknal/online``."""
    return os.environ.get("SEEKNAL_ONLINE_DIR") or os.path.join(
        os.path.expanduser("~"), ".seeknal", "online"
    )


def _connect(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(
        db, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class EmbeddedSink(OnlineSink):
    """An online sink in local SQLite files (the default when no sink is given).

    Parameters
    ----------
    path:
        Folder of the ``<table>.sqlite3`` files; created when missing. Default:
        ``$SEEKNAL_ONLINE_DIR`` or ``~/.seeknal/online``.
    orphan_after:
        Seconds without heartbeat after which an uncommitted generation is removed.
    shared:
        The folder is storage that every executor and the serving process see (a mounted
        network volume): allows exports from a cluster or a Spark Connect session, which
        are refused otherwise (use :class:`~seeknal_spark.online.redis.RedisSink` there).

    Examples
    --------
    >>> import tempfile
    >>> from seeknal_spark.online import OnlineTable, Snapshot, export_snapshots
    >>> sink = EmbeddedSink(tempfile.mkdtemp())
    >>> df = spark.createDataFrame([("a", 5.0)], "customer_id string, total double")
    >>> _ = export_snapshots([Snapshot("spend", "v1", ("customer_id",), df)],
    ...                      name="spend_online", sink=sink, progress=False)
    >>> OnlineTable.open("spend_online", sink=sink).get_features([{"customer_id": "a"}]).rows
    [{'total': 5.0}]
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        orphan_after: float = 600.0,
        shared: bool = False,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path) if path is not None else default_online_dir())
        self.orphan_after = orphan_after
        self.shared = shared
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"EmbeddedSink(path={self.path!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "orphan_after": self.orphan_after, "shared": self.shared}

    def check_session(self, spark: SparkSession) -> None:
        """Refuse executors that may run on other hosts, unless the folder is ``shared``.

        The executors write the SQLite file and the serving process reads it, so they must
        see one folder: true on a local master; on a cluster or through Spark Connect only
        when the folder is shared storage (say so with ``shared=True``).
        """
        if self.shared or executors_are_local(spark):
            return
        raise OnlineStoreError(
            f"the embedded online store at {self.path} is a local folder, but this Spark "
            "session's executors may run on other hosts (a cluster master or a Spark Connect "
            "server): use RedisSink(url=...) there, or EmbeddedSink(path, shared=True) when "
            "the folder is storage every executor and the serving process share"
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def describe(self) -> str:
        return f"embedded SQLite store at {self.path}"

    def db_file(self, table: str) -> str:
        """Path of the SQLite file of ``table``."""
        return os.path.join(self.path, validate_name(table, "online table") + ".sqlite3")

    def _conn(self, table: str, create: bool = False) -> sqlite3.Connection | None:
        """A per-thread connection (``None`` when the file does not exist and not ``create``)."""
        conns: dict[str, sqlite3.Connection] = self._local.__dict__.setdefault("conns", {})
        db = self.db_file(table)
        conn = conns.get(db)
        if conn is not None:
            return conn
        if not os.path.exists(db):
            if not create:
                return None
            try:
                Path(self.path).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OnlineStoreError(
                    f"cannot create the online store folder {self.path}: {exc}; pick a writable "
                    "path (EmbeddedSink(path=...) or $SEEKNAL_ONLINE_DIR)"
                ) from exc
        try:
            conn = _connect(db)
            if create:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OnlineStoreError(
                f"cannot open {db}: {exc}; check the file and its folder"
            ) from exc
        conns[db] = conn
        return conn

    def _must(self, table: str) -> sqlite3.Connection:
        conn = self._conn(table, create=True)
        assert conn is not None  # create=True always returns a connection
        return conn

    # -- export side ------------------------------------------------------------------
    def begin(self, table: str, namespaces: int) -> str:
        conn = self._must(table)
        with _Txn(conn, "IMMEDIATE"):
            cur = conn.execute(
                "INSERT INTO seeknal_generations (state, heartbeat) VALUES ('writing', ?)",
                (time.time(),),
            )
            gen = int(cur.lastrowid or 0)
            conn.execute(
                f"CREATE TABLE data_{gen} (ns INTEGER NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL, "
                "x INTEGER, PRIMARY KEY (ns, k)) WITHOUT ROWID"
            )
        return str(gen)

    def heartbeat(self, table: str, generation: str) -> None:
        conn = self._must(table)
        conn.execute(
            "UPDATE seeknal_generations SET heartbeat = ? "
            "WHERE generation = ? AND state = 'writing'",
            (time.time(), int(generation)),
        )

    def open_writer(self, table: str, generation: str) -> SinkWriter:
        return _SQLiteWriter(self.db_file(table), int(generation))

    def commit(self, table: str, generation: str, metadata: dict[str, Any]) -> str | None:
        conn = self._must(table)
        gen = int(generation)
        with _Txn(conn, "IMMEDIATE"):
            row = conn.execute(
                "SELECT state FROM seeknal_generations WHERE generation = ?", (gen,)
            ).fetchone()
            if row is None or row[0] != "writing":
                raise OnlineStoreError(
                    f"generation {gen} of online table {table!r} in {self.db_file(table)} was "
                    "removed while it was written; run the export again"
                )
            old = conn.execute("SELECT generation FROM seeknal_pointer WHERE id = 1").fetchone()
            conn.execute(
                "UPDATE seeknal_generations SET state = 'live', metadata = ? WHERE generation = ?",
                (json.dumps(metadata, sort_keys=True), gen),
            )
            conn.execute(
                "INSERT INTO seeknal_pointer (id, generation) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET generation = excluded.generation",
                (gen,),
            )
        return None if old is None else str(old[0])

    def abort(self, table: str, generation: str) -> None:
        self._cleanup(table, drop=int(generation))

    def cleanup(self, table: str) -> list[str]:
        return self._cleanup(table, drop=None)

    def _cleanup(self, table: str, drop: int | None) -> list[str]:
        conn = self._conn(table)
        if conn is None:
            return []
        removed: list[str] = []
        with _Txn(conn, "IMMEDIATE"):
            row = conn.execute("SELECT generation FROM seeknal_pointer WHERE id = 1").fetchone()
            current = None if row is None else int(row[0])
            limit = time.time() - self.orphan_after
            gens = conn.execute(
                "SELECT generation, state, heartbeat FROM seeknal_generations"
            ).fetchall()
            known = set()
            for gen, state, beat in gens:
                known.add(int(gen))
                alive = state == "writing" and beat >= limit and gen != drop
                if gen == current or alive:
                    continue
                conn.execute("DELETE FROM seeknal_generations WHERE generation = ?", (gen,))
                conn.execute(f"DROP TABLE IF EXISTS data_{int(gen)}")
                removed.append(str(gen))
            tables = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'data_%'"
            ).fetchall()
            for (name,) in tables:
                suffix = name[len("data_") :]
                if suffix.isdigit() and int(suffix) not in known:
                    conn.execute(f"DROP TABLE IF EXISTS data_{int(suffix)}")
                    removed.append(suffix)
        return sorted(set(removed), key=int)

    # -- serving side -----------------------------------------------------------------
    def read(
        self, table: str, requests: Sequence[tuple[int, Sequence[str]]]
    ) -> tuple[str | None, list[list[bytes | None]]]:
        conn = self._conn(table)
        empty: list[list[bytes | None]] = [[None] * len(keys) for _, keys in requests]
        if conn is None:
            return None, empty
        now_ms = int(time.time() * 1000)
        try:
            with _Txn(conn, "DEFERRED"):
                row = conn.execute("SELECT generation FROM seeknal_pointer WHERE id = 1").fetchone()
                if row is None:
                    return None, empty
                gen = int(row[0])
                out: list[list[bytes | None]] = []
                for ns, keys in requests:
                    found: dict[str, Any] = {}
                    uniq = list(dict.fromkeys(keys))
                    for i in range(0, len(uniq), _CHUNK):
                        part = uniq[i : i + _CHUNK]
                        marks = ",".join("?" * len(part))
                        for k, v, x in conn.execute(
                            f"SELECT k, v, x FROM data_{gen} WHERE ns = ? AND k IN ({marks})",
                            (ns, *part),
                        ):
                            if x is None or x > now_ms:
                                found[k] = v.encode()
                    out.append([found.get(k) for k in keys])
        except sqlite3.Error as exc:
            raise OnlineStoreError(
                f"reading online table {table!r} from {self.db_file(table)} failed: {exc}"
            ) from exc
        return str(gen), out

    def read_metadata(
        self, table: str, generation: str | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        conn = self._conn(table)
        if conn is None:
            return None
        if generation is None:
            row = conn.execute(
                "SELECT g.generation, g.metadata FROM seeknal_pointer p JOIN seeknal_generations g "
                "ON g.generation = p.generation WHERE p.id = 1"
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT generation, metadata FROM seeknal_generations WHERE generation = ?",
                (int(generation),),
            ).fetchone()
        if row is None or row[1] is None:
            return None
        return str(row[0]), json.loads(row[1])

    def generations(self, table: str) -> list[str]:
        conn = self._conn(table)
        if conn is None:
            return []
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'data_%'"
        ).fetchall()
        return sorted((n[len("data_") :] for (n,) in rows), key=int)


class _Txn:
    """``BEGIN <mode>`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection, mode: str) -> None:
        self.conn = conn
        self.mode = mode

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(f"BEGIN {self.mode}")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


class _SQLiteWriter(SinkWriter):
    """Inserts one batch per transaction into ``data_<generation>``."""

    def __init__(self, db: str, generation: int) -> None:
        if not os.path.exists(db):
            raise OnlineStoreError(
                f"{db} does not exist on this executor: the embedded sink works with local "
                "Spark only; use RedisSink on a cluster"
            )
        self._conn = _connect(db)
        self._sql = f"INSERT OR REPLACE INTO data_{generation} (ns, k, v, x) VALUES (?, ?, ?, ?)"

    def write(
        self,
        namespace: int,
        keys: pa.Array,
        values: pa.Array,
        expire_at_ms: int | None = None,
    ) -> None:
        rows = [
            (namespace, k, v, expire_at_ms)
            for k, v in zip(keys.to_pylist(), values.to_pylist(), strict=True)
        ]
        try:
            with _Txn(self._conn, "IMMEDIATE"):
                self._conn.executemany(self._sql, rows)
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"writing an export batch failed: {exc}") from exc

    def close(self) -> None:
        self._conn.close()
