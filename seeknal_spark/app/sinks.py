"""The one online-sink factory of the application layer.

The export job's options (``--redis-url``, ``--online-dir``) and a project's ``online:``
section both come here, so a sink is built the same way whoever asks for it.
"""

from __future__ import annotations

from seeknal_spark.app.config import OnlineConfig
from seeknal_spark.app.inputs import local_path
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.online.sink import OnlineSink

__all__ = ["make_sink", "sink_from_config"]


def make_sink(
    *,
    redis_url: str | None = None,
    redis_password_env: str | None = None,
    online_dir: str | None = None,
    key_prefix: str = "seeknal",
    socket_timeout: float = 30.0,
) -> OnlineSink:
    """A :class:`~seeknal_spark.online.redis.RedisSink` for ``redis_url``, else an embedded one.

    Examples
    --------
    >>> make_sink(online_dir="/tmp/seeknal-doc-online")
    EmbeddedSink(path='/tmp/seeknal-doc-online')

    Raises
    ------
    ConfigurationError
        When both a Redis URL and an online folder are given, or a password variable
        without a Redis URL.
    """
    if redis_url:
        if online_dir:
            raise ConfigurationError("give either a Redis URL or an online folder, not both")
        from seeknal_spark.online.redis import RedisSink

        return RedisSink(
            redis_url,
            password_env=redis_password_env,
            key_prefix=key_prefix,
            socket_timeout=socket_timeout,
        )
    if redis_password_env:
        raise ConfigurationError("redis_password_env needs a Redis URL (--redis-url)")
    from seeknal_spark.online.embedded import EmbeddedSink

    return EmbeddedSink(None if online_dir is None else local_path(online_dir))


def sink_from_config(online: OnlineConfig, kind: str | None = None, source: str = "") -> OnlineSink:
    """The sink of a project's ``online:`` section (``online.sink`` unless ``kind`` names another).

    ``embedded`` without a path uses the sink's default folder; ``redis`` reads the URL
    (or the variable ``url_env``) and the password from the variable ``password_env``.
    """
    kind = kind or online.sink
    where = source or "the project"
    if kind == "embedded":
        path = None if online.embedded is None else online.embedded.path
        return make_sink(online_dir=path)
    if kind == "redis":
        if online.redis is None:
            raise ConfigurationError(
                f"{where} has no online.redis section; add one (url, password_env) or use "
                "--sink embedded"
            )
        return make_sink(
            redis_url=online.redis.resolved_url(),
            redis_password_env=online.redis.password_env,
            key_prefix=online.redis.key_prefix,
            socket_timeout=online.redis.socket_timeout,
        )
    raise ConfigurationError(f"unknown online sink {kind!r} in {where}: use embedded or redis")
