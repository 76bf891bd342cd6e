"""Serving online tables from Redis.

Layout of one table ``T`` under the key prefix ``P`` (default ``seeknal``)::

    P:T:current           the served generation (an integer, as a string)
    P:T:next              counter handing out generation numbers
    P:T:writing           hash generation -> heartbeat (Redis TIME seconds) of exports running
    P:T:<gen>:m           JSON metadata of the generation (schema, versions, as_of...)
    P:T:<gen>:<ns>:<key>  one string per entity key of lookup <ns>: its encoded features

Every step that must be atomic is a Lua script, so it runs alone in Redis: starting a
generation, committing (store metadata + flip ``current``), cleaning up, and reading
(``GET current`` then ``MGET`` the keys of *that* generation). A reader therefore sees
one generation whole; the old generation is deleted only after the flip, and a read
that started before the flip finished before it.

Exports write from the executors over plain redis-py connections, but with the RESP
protocol encoded here (``MSET`` of 1,000 keys per command, several commands in flight),
because per-command client overhead, not Redis, is what limits throughput.

The scripts build key names at run time, so a table must live on a single Redis
node (standalone, or a primary with replicas); Redis Cluster is not supported.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from seeknal_spark.errors import ConfigurationError, OnlineStoreError
from seeknal_spark.naming import validate_name
from seeknal_spark.online.sink import OnlineSink, SinkWriter

__all__ = ["RedisSink"]

logger = logging.getLogger(__name__)

_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

_BEGIN = """
local g = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], g, t[1])
return g
"""

_HEARTBEAT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], redis.call('TIME')[1])
  return 1
end
return 0
"""

_COMMIT = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return redis.error_reply('SEEKNAL generation ' .. ARGV[1] .. ' is no longer registered')
end
redis.call('SET', KEYS[3], ARGV[2])
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return old
"""

# KEYS: current, writing. ARGV: "P:T:", cursor, count, orphan_after, drop (gen or "").
_CLEANUP = """
local keep = {}
local cur = redis.call('GET', KEYS[1])
if cur then keep[cur] = true end
local now = tonumber(redis.call('TIME')[1])
local w = redis.call('HGETALL', KEYS[2])
for i = 1, #w, 2 do
  if w[i] ~= ARGV[5] and tonumber(w[i + 1]) >= now - tonumber(ARGV[4]) then
    keep[w[i]] = true
  else
    redis.call('HDEL', KEYS[2], w[i])
  end
end
if ARGV[5] ~= '' then keep[ARGV[5]] = nil end
local res = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[1] .. '[0-9]*', 'COUNT', ARGV[3])
local plen = #ARGV[1]
local dead = {}
local gens = {}
for _, k in ipairs(res[2]) do
  local g = string.match(string.sub(k, plen + 1), '^(%d+):')
  if g and not keep[g] then
    dead[#dead + 1] = k
    gens[g] = true
  end
end
for i = 1, #dead, 1000 do
  redis.call('UNLINK', unpack(dead, i, math.min(i + 999, #dead)))
end
local out = {res[1]}
for g, _ in pairs(gens) do out[#out + 1] = g end
return out
"""

# KEYS: current. ARGV: "P:T:", then one "<ns>:<key>" suffix per key.
_READ = """
local g = redis.call('GET', KEYS[1])
if not g then return {false} end
local base = ARGV[1] .. g .. ':'
local out = {g}
local n = #ARGV
local i = 2
while i <= n do
  local j = math.min(i + 999, n)
  local ks = {}
  for a = i, j do ks[#ks + 1] = base .. ARGV[a] end
  local vs = redis.call('MGET', unpack(ks))
  for a = 1, #ks do out[#out + 1] = vs[a] end
  i = j + 1
end
return out
"""

# ARGV: expire-at ms, then key, value, key, value...
_SET_PXAT = """
local t = ARGV[1]
for i = 2, #ARGV, 2 do
  redis.call('SET', ARGV[i], ARGV[i + 1], 'PXAT', t)
end
return (#ARGV - 1) / 2
"""


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
        Name of an environment variable holding the password (read when the sink is
        created, so the executors need not have it). It overrides a password in ``url``.
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

    # -- plumbing ---------------------------------------------------------------------
    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": min(self.socket_timeout, 5.0),
        }
        if self._password is not None:
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
    def begin(self, table: str) -> str:
        b = self._base(table)
        gen = self._call(
            f"starting an export of {table!r}", "begin", _BEGIN, [b + "next", b + "writing"], []
        )
        return str(int(gen))

    def heartbeat(self, table: str, generation: str) -> None:
        b = self._base(table)
        self._call("heartbeat", "heartbeat", _HEARTBEAT, [b + "writing"], [generation])

    def open_writer(self, table: str, generation: str) -> SinkWriter:
        return _RedisWriter(self, (self._base(table) + generation + ":").encode())

    def commit(self, table: str, generation: str, metadata: dict[str, Any]) -> str | None:
        b = self._base(table)
        redis = _import_redis()
        try:
            old = self._script("commit", _COMMIT)(
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
        cursor = "0"
        removed: set[str] = set()
        while True:
            out = self._call(
                f"cleaning up {table!r}",
                "cleanup",
                _CLEANUP,
                [b + "current", b + "writing"],
                [b, cursor, 5000, self.orphan_after, drop],
            )
            cursor = out[0].decode()
            removed.update(g.decode() for g in out[1:])
            if cursor == "0":
                return sorted(removed, key=int)

    # -- serving side -----------------------------------------------------------------
    def read(
        self, table: str, requests: Sequence[tuple[int, Sequence[str]]]
    ) -> tuple[str | None, list[list[bytes | None]]]:
        b = self._base(table)
        args: list[str] = [b]
        for ns, keys in requests:
            pre = f"{ns}:"
            args.extend([pre + k for k in keys])
        out = self._call(f"reading {table!r}", "read", _READ, [b + "current"], args)
        if out[0] is None:
            return None, [[None] * len(keys) for _, keys in requests]
        values: list[list[bytes | None]] = []
        i = 1
        for _, keys in requests:
            values.append(out[i : i + len(keys)])
            i += len(keys)
        return out[0].decode(), values

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
        b = self._base(table)
        gens: set[str] = set()
        for k in self.client().scan_iter(match=b + "[0-9]*", count=5000):
            gens.add(k.decode()[len(b) :].split(":", 1)[0])
        return sorted(gens, key=int)


class _RedisWriter(SinkWriter):
    """Pipelines pre-encoded ``MSET`` (or scripted ``SET ... PXAT``) batches over one connection."""

    BATCH = 1000
    IN_FLIGHT = 16

    def __init__(self, sink: RedisSink, base: bytes) -> None:
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
        self._pxat_sha: bytes | None = None

    def _send(self, payload: bytes) -> None:
        try:
            self._conn.send_packed_command([payload], check_health=False)
        except self._redis.exceptions.RedisError as exc:
            raise self._sink._error(exc, "writing an export batch") from exc
        self._pending += 1
        if self._pending >= self.IN_FLIGHT:
            self._drain(self.IN_FLIGHT // 2)

    def _drain(self, keep: int = 0) -> None:
        try:
            while self._pending > keep:
                self._pending -= 1
                self._conn.read_response()
        except self._redis.exceptions.RedisError as exc:
            raise self._sink._error(exc, "writing an export batch") from exc

    def write(
        self,
        namespace: int,
        keys: Sequence[str],
        values: Sequence[str],
        expire_at_ms: int | None = None,
    ) -> None:
        pre = self._base + b"%d:" % namespace
        n = len(keys)
        if expire_at_ms is not None and self._pxat_sha is None:
            self._drain()
            self._conn.send_command("SCRIPT", "LOAD", _SET_PXAT)
            self._pxat_sha = self._conn.read_response()
        for start in range(0, n, self.BATCH):
            parts = []
            for k, v in zip(
                keys[start : start + self.BATCH], values[start : start + self.BATCH], strict=True
            ):
                kb = pre + k.encode()
                vb = v.encode()
                parts.append(b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(kb), kb, len(vb), vb))
            if expire_at_ms is None:
                head = b"*%d\r\n$4\r\nMSET\r\n" % (2 * len(parts) + 1)
            else:
                sha = self._pxat_sha or b""
                ms = b"%d" % expire_at_ms
                head = b"*%d\r\n$7\r\nEVALSHA\r\n" % (2 * len(parts) + 4) + b"".join(
                    [b"$%d\r\n%b\r\n" % (len(a), a) for a in (sha, b"0", ms)]
                )
            self._send(head + b"".join(parts))

    def close(self) -> None:
        try:
            self._drain()
        finally:
            self._pool.release(self._conn)
            self._pool.disconnect()
