"""Serving online tables from Redis.

Layout of one table ``T`` under the key prefix ``P`` (default ``seeknal``)::

    P:T:current      the served generation (an integer, as a string)
    P:T:next         counter handing out generation numbers
    P:T:parts        hash generation -> number of lookups, for every generation holding data
    P:T:writing      hash generation -> heartbeat (Redis TIME seconds) of exports running
    P:T:<gen>:m      JSON metadata of the generation (schema, versions, as_of...)
    P:T:<gen>:<ns>   hash of lookup <ns>: field = encoded entity key, value = its features

Every step that must be atomic is a Lua script, so it runs alone in Redis: starting a
generation, committing (store metadata + flip ``current``), cleaning up, and reading
(``GET current`` then ``HMGET`` the lookups of *that* generation). A reader therefore
sees one generation whole; the old generation is deleted only after the flip (with
``UNLINK``, freed in the background), and a read that started before the flip finished
before it. Deleting a generation touches a handful of keys, never a key-space scan.

One hash per lookup and generation holds the values of all its keys (each key's features
in one field), which makes the flip and the cleanup O(1) and lets a TTL expire a whole
lookup (every key of a lookup expires at the same moment, ``as_of + ttl``). The price:
a lookup lives on one Redis node; the scripts also build key names at run time, so
Redis Cluster is not supported (standalone, or a primary with replicas).

Exports write from the executors over redis-py connections, with the ``HSET`` commands
framed here by Arrow compute (1,000 fields per command, several commands in flight),
because per-command client overhead, not Redis, is what limits throughput.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seeknal_spark._executors import executors_are_local
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ConfigurationError, OnlineStoreError
from seeknal_spark.online.redis_scripts import BEGIN, CLEANUP, COMMIT, HEARTBEAT, READ, READ_SHA
from seeknal_spark.online.sink import OnlineSink, SinkWriter

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["RedisSink"]

logger = logging.getLogger(__name__)

_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "the Redis online sink needs the redis package: pip install seeknal-spark[redis]"
        ) from exc
    return redis


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class RedisSink(OnlineSink):
    """An online sink on one Redis server (``redis://`` or ``rediss://`` for TLS).

    Parameters
    ----------
    url:
        ``redis://[[user]:password@]host[:port][/db]`` or ``rediss://...``; TLS options
        such as ``?ssl_cert_reqs=none`` are passed on to redis-py.
    password_env:
        Name of an environment variable holding the password; it overrides a password in
        ``url``. The driver reads it when the sink is created. Export tasks sent to
        executors on other hosts (a cluster, Spark Connect) do not carry it: they read the
        same variable from the executors' environment (``spark.executorEnv.<NAME>``, or a
        Databricks cluster environment variable holding ``{{secrets/<scope>/<key>}}``).
        On a local master the tasks carry it, as they never leave this host. A password
        written in ``url`` always travels with the tasks: prefer ``password_env``.
    key_prefix:
        First part of every key (letters, digits, ``_``, ``.``, ``-``).
    socket_timeout:
        Seconds before a blocked read or write fails.
    orphan_after:
        Seconds without heartbeat after which an uncommitted generation (its export was
        killed) is removed by the next export's cleanup.

    Raises
    ------
    ConfigurationError
        When redis-py is not installed, the URL scheme is not ``redis``/``rediss``, or
        ``password_env`` names an unset variable.

    Examples
    --------
    Skipped as doctests, with the reason: they need a Redis server.

    >>> sink = RedisSink("redis://127.0.0.1:6379/0", key_prefix="demo")  # doctest: +SKIP
    >>> table = hist.serve("churn_features_online", sink=sink)  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        password_env: str | None = None,
        key_prefix: str = "seeknal",
        socket_timeout: float = 30.0,
        orphan_after: float = 600.0,
    ) -> None:
        _import_redis()
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss"):
            raise ConfigurationError(
                f"Redis URL {_safe_url(url)!r} must start with redis:// or rediss:// (TLS)"
            )
        if not _PREFIX.match(key_prefix):
            raise ConfigurationError(
                f"invalid Redis key_prefix {key_prefix!r}: use 1-64 letters, digits, '_', '.', '-'"
            )
        self._password: str | None = None
        self.password_env = password_env
        self._password_from_env = False  # True on executors: read password_env there
        if password_env is not None:
            password = os.environ.get(password_env)
            if password is None:
                raise ConfigurationError(
                    f"environment variable {password_env!r} (the Redis password) is not set: "
                    "export it or drop password_env"
                )
            self._password = password
        self.url = url
        self.key_prefix = key_prefix
        self.socket_timeout = socket_timeout
        self.orphan_after = orphan_after
        self._client: Any = None
        self._scripts: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RedisSink(url={_safe_url(self.url)!r}, key_prefix={self.key_prefix!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        state["_scripts"] = {}
        return state

    def describe(self) -> str:
        return f"Redis at {_safe_url(self.url)}"

    def for_executors(self, spark: SparkSession) -> RedisSink:
        """This sink without the password when the executors may be on other hosts."""
        if self.password_env is None or executors_are_local(spark):
            return self
        remote = copy.copy(self)
        remote._password = None
        remote._password_from_env = True
        remote._client = None
        remote._scripts = {}
        return remote

    # -- plumbing ---------------------------------------------------------------------
    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": min(self.socket_timeout, 5.0),
        }
        if self._password_from_env and self.password_env is not None:
            password = os.environ.get(self.password_env)
            if password is None:
                raise OnlineStoreError(
                    f"environment variable {self.password_env!r} (the Redis password of "
                    f"{self.describe()}) is not set on this executor: set it on every "
                    f"executor, e.g. spark.executorEnv.{self.password_env} or a Databricks "
                    "cluster environment variable holding {{secrets/<scope>/<key>}}"
                )
            kwargs["password"] = password
        elif self._password is not None:
            kwargs["password"] = self._password
        return kwargs

    def client(self) -> Any:
        """The driver-side redis-py client (created on first use)."""
        if self._client is None:
            redis = _import_redis()
            self._client = redis.Redis.from_url(self.url, **self._kwargs())
        return self._client

    def _script(self, name: str, source: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self.client().register_script(source)
            self._scripts[name] = script
        return script

    def _error(self, exc: Exception, doing: str) -> OnlineStoreError:
        redis = _import_redis()
        if isinstance(exc, redis.exceptions.AuthenticationError):
            hint = "check the password (password_env / the URL) and the user's ACL"
        elif isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            hint = (
                "check that redis-server is running and reachable there (host, port, TLS "
                "for rediss://), or pass the right --redis-url"
            )
        else:
            hint = "see the Redis error above"
        return OnlineStoreError(f"{doing} failed on {self.describe()}: {exc}; {hint}")

    def _call(self, doing: str, script: str, source: str, keys: list[str], args: list[Any]) -> Any:
        redis = _import_redis()
        try:
            return self._script(script, source)(keys=keys, args=args)
        except redis.exceptions.RedisError as exc:
            raise self._error(exc, doing) from exc

    def _base(self, table: str) -> str:
        return f"{self.key_prefix}:{validate_name(table, 'online table')}:"

    # -- export side ------------------------------------------------------------------
    def begin(self, table: str, namespaces: int) -> str:
        b = self._base(table)
        gen = self._call(
            f"starting an export of {table!r}",
            "begin",
            BEGIN,
            [b + "next", b + "writing", b + "parts"],
            [namespaces],
        )
        return str(int(gen))

    def heartbeat(self, table: str, generation: str) -> None:
        b = self._base(table)
        self._call("heartbeat", "heartbeat", HEARTBEAT, [b + "writing"], [generation])

    def open_writer(self, table: str, generation: str) -> SinkWriter:
        return _RedisWriter(self, (self._base(table) + generation + ":").encode())

    def commit(self, table: str, generation: str, metadata: dict[str, Any]) -> str | None:
        b = self._base(table)
        redis = _import_redis()
        try:
            old = self._script("commit", COMMIT)(
                keys=[b + "current", b + "writing", f"{b}{generation}:m"],
                args=[generation, json.dumps(metadata, sort_keys=True)],
            )
        except redis.exceptions.ResponseError as exc:
            if "SEEKNAL" in str(exc):
                raise OnlineStoreError(
                    f"generation {generation} of online table {table!r} on {self.describe()} "
                    "was removed while it was written (its heartbeat stopped for longer than "
                    f"orphan_after={self.orphan_after}s); run the export again"
                ) from exc
            raise self._error(exc, f"committing {table!r}") from exc
        except redis.exceptions.RedisError as exc:
            raise self._error(exc, f"committing {table!r}") from exc
        return None if old is None else old.decode()

    def abort(self, table: str, generation: str) -> None:
        self._cleanup(table, drop=generation)

    def cleanup(self, table: str) -> list[str]:
        return self._cleanup(table, drop="")

    def _cleanup(self, table: str, drop: str) -> list[str]:
        b = self._base(table)
        out = self._call(
            f"cleaning up {table!r}",
            "cleanup",
            CLEANUP,
            [b + "current", b + "writing", b + "parts"],
            [b, self.orphan_after, drop],
        )
        return sorted((g.decode() for g in out), key=int)

    # -- serving side -----------------------------------------------------------------
    def read(
        self, table: str, requests: Sequence[tuple[int, Sequence[str]]]
    ) -> tuple[str | None, list[list[bytes | None]]]:
        b = self._base(table)
        args: list[bytes] = [READ_SHA, b"1", (b + "current").encode(), b.encode()]
        for ns, keys in requests:
            args.append(b"%d" % ns)
            args.append(b"%d" % len(keys))
            args.extend([k.encode() for k in keys])
        # framed here: redis-py's generic packing costs more than the round trip itself
        payload = b"*%d\r\n$7\r\nEVALSHA\r\n" % (len(args) + 1) + b"".join(
            [b"$%d\r\n%b\r\n" % (len(a), a) for a in args]
        )
        out = self._round_trip(payload, f"reading {table!r}")
        if out[0] is None:
            return None, [[None] * len(keys) for _, keys in requests]
        values: list[list[bytes | None]] = []
        i = 1
        for _, keys in requests:
            values.append(out[i : i + len(keys)])
            i += len(keys)
        return out[0].decode(), values

    def _round_trip(self, payload: bytes, doing: str) -> Any:
        """Send one packed ``EVALSHA`` of the read script; load the script if Redis lacks it."""
        redis = _import_redis()
        pool = self.client().connection_pool
        try:
            conn = pool.get_connection()
        except redis.exceptions.RedisError as exc:
            raise self._error(exc, doing) from exc
        try:
            try:
                conn.send_packed_command([payload], check_health=False)
                return conn.read_response()
            except redis.exceptions.NoScriptError:  # first read since Redis (re)started
                conn.send_command("SCRIPT", "LOAD", READ)
                conn.read_response()
                conn.send_packed_command([payload], check_health=False)
                return conn.read_response()
        except redis.exceptions.RedisError as exc:
            conn.disconnect()
            raise self._error(exc, doing) from exc
        finally:
            pool.release(conn)

    def read_metadata(
        self, table: str, generation: str | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        b = self._base(table)
        redis = _import_redis()
        try:
            if generation is None:
                raw_gen = self.client().get(b + "current")
                if raw_gen is None:
                    return None
                generation = raw_gen.decode()
            raw = self.client().get(f"{b}{generation}:m")
        except redis.exceptions.RedisError as exc:
            raise self._error(exc, f"reading the metadata of {table!r}") from exc
        if raw is None:
            return None
        return str(generation), json.loads(raw)

    def generations(self, table: str) -> list[str]:
        redis = _import_redis()
        try:
            gens = self.client().hkeys(self._base(table) + "parts")
        except redis.exceptions.RedisError as exc:
            raise self._error(exc, f"listing the generations of {table!r}") from exc
        return sorted((g.decode() for g in gens), key=int)


class _RedisWriter(SinkWriter):
    """Pipelines pre-framed ``HSET`` batches of one generation over one connection."""

    BATCH = 1000
    IN_FLIGHT = 16

    def __init__(self, sink: RedisSink, base: bytes) -> None:
        """``base`` is ``P:T:<gen>:``; lookup ``ns`` goes to the hash ``base + ns``."""
        redis = _import_redis()
        self._redis = redis
        self._sink = sink
        self._base = base
        self._pool = redis.ConnectionPool.from_url(sink.url, **sink._kwargs())
        try:
            self._conn = self._pool.get_connection()
        except redis.exceptions.RedisError as exc:
            self._pool.disconnect()
            raise sink._error(exc, "opening an export connection") from exc
        self._pending = 0
        self._broken = False

    def _failed(self, exc: Exception) -> OnlineStoreError:
        # the connection is unusable now (redis-py dropped its reader): close() must not
        # read from it again, or a secondary error would hide this one
        self._broken = True
        return self._sink._error(exc, "writing an export batch")

    def _send(self, payload: bytes) -> None:
        try:
            self._conn.send_packed_command([payload], check_health=False)
        except (self._redis.exceptions.RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        self._pending += 1
        if self._pending >= self.IN_FLIGHT:
            self._drain(self.IN_FLIGHT // 2)

    def _drain(self, keep: int = 0) -> None:
        try:
            while self._pending > keep:
                self._pending -= 1
                self._conn.read_response()
        except (self._redis.exceptions.RedisError, OSError) as exc:
            raise self._failed(exc) from exc

    def write(
        self,
        namespace: int,
        keys: pa.Array,
        values: pa.Array,
        expire_at_ms: int | None = None,
    ) -> None:
        n = len(keys)
        if n == 0:
            return
        hkey = self._base + b"%d" % namespace
        # RESP of every field/value pair, framed by Arrow: $<len> CRLF <key> CRLF $<len> ...
        framed = pc.binary_join_element_wise(
            "$",
            pc.binary_length(keys).cast(pa.string()),
            "\r\n",
            keys,
            "\r\n$",
            pc.binary_length(values).cast(pa.string()),
            "\r\n",
            values,
            "\r\n",
            "",
        )
        wide = pa.types.is_large_string(framed.type)
        offsets = np.frombuffer(framed.buffers()[1], dtype=np.int64 if wide else np.int32)
        offsets = offsets[framed.offset :]
        data = framed.buffers()[2]
        target = b"$%d\r\n%b\r\n" % (len(hkey), hkey)
        for start in range(0, n, self.BATCH):
            stop = min(start + self.BATCH, n)
            body = data[int(offsets[start]) : int(offsets[stop])].to_pybytes()
            head = b"*%d\r\n$4\r\nHSET\r\n" % (2 * (stop - start) + 2)
            self._send(head + target + body)
        if expire_at_ms is not None:
            ms = b"%d" % expire_at_ms
            self._send(b"*3\r\n$9\r\nPEXPIREAT\r\n" + target + b"$%d\r\n%b\r\n" % (len(ms), ms))

    def close(self) -> None:
        try:
            if not self._broken:  # after a failure there is nothing to flush
                self._drain()
        finally:
            self._pool.release(self._conn)
            self._pool.disconnect()
