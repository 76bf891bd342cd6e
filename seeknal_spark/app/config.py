"""The YAML project file, parsed at the edge (CLI, ``jobs/``) into small frozen dataclasses.

Every key is checked: an unknown key, a wrong type, a missing required key or a reference
to something undeclared raises :class:`~seeknal_spark.errors.ConfigurationError` naming
the file, the line and the key path, e.g.::

    conf/example.yaml:14: feature_groups.customer_spend.ttl: expected a duration like
    '30d', '12h' or '15m', got 30 (int)

Secrets never live in the file: the Redis password is read from the environment variable
named by ``password_env``. Strings may use ``${VAR}`` or ``${VAR:-default}`` to read the
environment.

A project file::

    project: {name: example}
    spark: {master: "local[2]", conf: {spark.sql.shuffle.partitions: "4"}}
    store: {path: ./runs/example_store}            # or {catalog: main.features}
    inputs:
      transactions: {generator: "seeknal_spark.example.data:transactions", args: {seed: 42}}
      events: {path: s3a://bucket/events, format: delta}
    entities:
      customer: {join_keys: [customer_id]}
    feature_groups:
      customer_spend:
        entity: customer
        event_time_col: event_time
        transform: "seeknal_spark.example.features:customer_spend"   # or sql: "SELECT ..."
        inputs: [transactions]
        features: {spend_7d: double}
        ttl: 30d
    lookups:
      - {feature_group: customer_spend, features: [spend_7d], default: 0.0}
    training: {spine: churn_spine, timestamp_col: prediction_time, label_col: churned}
    online:
      embedded: {path: ./runs/online}
      redis: {url: "redis://localhost:6379/0", password_env: REDIS_PASSWORD}
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import yaml

from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.definitions.types import parse_type
from seeknal_spark.errors import ConfigurationError, InvalidNameError

__all__ = [
    "EmbeddedSinkConfig",
    "EntityConfig",
    "FeatureGroupConfig",
    "InputConfig",
    "LookupConfig",
    "OnlineConfig",
    "ProjectConfig",
    "RedisSinkConfig",
    "SparkConfig",
    "StoreConfig",
    "TrainingConfig",
    "load_config",
    "parse_config",
    "parse_duration",
]

T = TypeVar("T")

_DURATION = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_INPUT_FORMATS = ("delta", "parquet", "csv", "json", "orc")
_TRAINING_FORMATS = ("parquet", "delta")
_WRITE_MODES = ("overwrite", "append", "merge")


def parse_duration(text: str) -> timedelta:
    """A positive duration from text like ``"30d"``, ``"12h"``, ``"1d12h"``, ``"2w"``, ``"90s"``.

    Raises
    ------
    ValueError
        When the text is not made of ``<number><unit>`` parts (units w, d, h, m, s) or
        the duration is zero.
    """
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"expected a duration like '30d', '12h', '15m' or '1d12h', got {text!r}")
    total = timedelta()
    for number, unit in parts:
        total += timedelta(**{_DURATION_UNITS[unit]: int(number)})
    if total <= timedelta(0):
        raise ValueError(f"a duration must be positive, got {text!r}")
    return total


# -- the configuration objects -------------------------------------------------------------
class _Located:
    """Where a section came from, for error messages raised after parsing."""

    where: str
    lines: Mapping[str, str]

    def at(self, key: str) -> str:
        """``file:line`` of ``key`` in this section (or of the section)."""
        return self.lines.get(key) or self.where


@dataclass(frozen=True)
class SparkConfig:
    """Settings for a *new local* session; an existing session is never changed."""

    master: str = "local[*]"
    app_name: str = "seeknal-spark"
    conf: Mapping[str, str] = field(default_factory=dict)
    jars_dir: str | None = None


@dataclass(frozen=True)
class StoreConfig:
    """Where the feature store lives: a root ``path`` or a metastore ``catalog``."""

    path: str | None = None
    catalog: str | None = None


@dataclass(frozen=True)
class InputConfig(_Located):
    """A named data source: a ``path``, a ``table``, or a ``generator`` function.

    ``generator`` is ``"module:function"``, called as ``function(spark, **args)``.
    """

    name: str
    path: str | None = None
    table: str | None = None
    format: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    generator: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class EntityConfig(_Located):
    """An entity and its join keys."""

    name: str
    join_keys: tuple[str, ...]
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class FeatureGroupConfig(_Located):
    """A feature group: its transform is an import path (``transform``) or ``sql`` text."""

    name: str
    entity: str
    event_time_col: str
    transform: str | None = None
    sql: str | None = None
    inputs: tuple[str, ...] = ()
    features: Mapping[str, str] | None = None
    ttl: timedelta | None = None
    created_time_col: str | None = None
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    version: str = "v1"
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class LookupConfig(_Located):
    """Features to look up from a group version (for training sets and serving)."""

    feature_group: str
    features: tuple[str, ...] | None = None
    version: str | None = None
    ttl: timedelta | None = None
    prefix: str | None = None
    default: Any = None
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TrainingConfig(_Located):
    """How to build a training set: a spine input and where to write the result."""

    spine: str
    timestamp_col: str
    label_col: str | None = None
    output: str | None = None
    format: str = "parquet"
    where: str = field(default="", compare=False, repr=False)
    lines: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class EmbeddedSinkConfig:
    """The embedded (SQLite) online store."""

    path: str | None = None


@dataclass(frozen=True)
class RedisSinkConfig:
    """A Redis online store; the password comes from the variable ``password_env``."""

    url: str = "redis://127.0.0.1:6379/0"
    url_env: str | None = None
    password_env: str | None = None
    key_prefix: str = "seeknal"
    socket_timeout: float = 30.0

    def resolved_url(self) -> str:
        """``url``, or the value of the environment variable ``url_env`` when it is set."""
        if self.url_env is not None and os.environ.get(self.url_env):
            return os.environ[self.url_env]
        return self.url


@dataclass(frozen=True)
class OnlineConfig:
    """Online sinks; ``sink`` names the one used by default."""

    sink: str = "embedded"
    table: str | None = None
    embedded: EmbeddedSinkConfig | None = None
    redis: RedisSinkConfig | None = None


@dataclass(frozen=True)
class ProjectConfig:
    """A whole project file."""

    name: str
    store: StoreConfig
    spark: SparkConfig = field(default_factory=SparkConfig)
    description: str = ""
    inputs: Mapping[str, InputConfig] = field(default_factory=dict)
    entities: Mapping[str, EntityConfig] = field(default_factory=dict)
    feature_groups: Mapping[str, FeatureGroupConfig] = field(default_factory=dict)
    lookups: tuple[LookupConfig, ...] = ()
    training: TrainingConfig | None = None
    online: OnlineConfig = field(default_factory=OnlineConfig)
    source: str | None = field(default=None, compare=False)


# -- reading YAML nodes with their positions --------------------------------------------------
class _Reader:
    """Turns YAML nodes into checked Python values, with file:line in every error."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader

    def where(self, node: yaml.Node) -> str:
        return f"{self.source}:{node.start_mark.line + 1}"

    def fail(self, node: yaml.Node, path: str, message: str) -> ConfigurationError:
        prefix = f"{self.where(node)}: {path}: " if path else f"{self.where(node)}: "
        return ConfigurationError(prefix + message)

    def value(self, node: yaml.Node) -> Any:
        value = self.loader.construct_object(node, deep=True)
        return self._interpolate_all(node, value)

    def _interpolate_all(self, node: yaml.Node, value: Any) -> Any:
        if isinstance(value, str):
            return self._interpolate(node, value)
        if isinstance(value, list):
            return [self._interpolate_all(node, v) for v in value]
        if isinstance(value, dict):
            return {k: self._interpolate_all(node, v) for k, v in value.items()}
        return value

    def _interpolate(self, node: yaml.Node, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found is None:
                if default is None:
                    raise self.fail(
                        node,
                        "",
                        f"environment variable {name!r} is not set (used as "
                        f"${{{name}}}); export it or write ${{{name}:-default}}",
                    )
                return default
            return found

        return _ENV_VAR.sub(replace, text)

    def mapping(self, node: yaml.Node, path: str) -> _Mapping:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, f"expected a mapping (key: value), got {_kind(node)}")
        return _Mapping(self, node, path)

    def any_mapping(self, node: yaml.Node, path: str) -> dict[str, Any]:
        """A mapping of anything YAML can hold (generator arguments)."""
        self.mapping(node, path)  # checks the kind and duplicate keys
        value: dict[str, Any] = self.value(node)
        return value

    def string(self, node: yaml.Node, path: str, *, name: str | None = None) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            got = _describe(self.value(node)) if isinstance(node, yaml.ScalarNode) else None
            raise self.fail(node, path, f"expected a string, got {got or _kind(node)}")
        text = str(self.value(node))
        if name is not None:
            try:
                validate_name(text, name)
            except InvalidNameError as exc:
                raise self.fail(node, path, str(exc)) from None
        return text

    def text(self, node: yaml.Node, path: str) -> str:
        """A string; numbers and booleans are accepted and turned into their text."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail(node, path, f"expected a string or number, got {_kind(node)}")
        value = self.value(node)
        if isinstance(value, bool):
            return "true" if value else "false"
        if not isinstance(value, (str, int, float)):
            raise self.fail(node, path, f"expected a string or number, got {_describe(value)}")
        return str(value)

    def number(self, node: yaml.Node, path: str) -> float:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(node, path, f"expected a positive number, got {_describe(value)}")
        return float(value)

    def string_list(
        self, node: yaml.Node, path: str, *, name: str | None = None
    ) -> tuple[str, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            return (self.string(node, path, name=name),)
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, path, f"expected a list of strings, got {_kind(node)}")
        items = tuple(
            self.string(item, f"{path}[{i}]", name=name) for i, item in enumerate(node.value)
        )
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item in seen:
                raise self.fail(node.value[i], f"{path}[{i}]", f"{item!r} is listed twice")
            seen.add(item)
        return items

    def string_map(self, node: yaml.Node, path: str) -> dict[str, str]:
        section = self.mapping(node, path)
        return {key: self.text(value, f"{path}.{key}") for key, value in section.items()}

    def duration(self, node: yaml.Node, path: str) -> timedelta:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str):
            raise self.fail(
                node,
                path,
                f"expected a duration like '30d', '12h' or '15m', got {_describe(value)}",
            )
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(node, path, str(exc)) from None

    def choice(self, node: yaml.Node, path: str, options: tuple[str, ...]) -> str:
        text = self.string(node, path)
        if text not in options:
            raise self.fail(node, path, f"expected one of {list(options)}, got {text!r}")
        return text

    def import_path(self, node: yaml.Node, path: str) -> str:
        text = self.string(node, path)
        if not _IMPORT_PATH.match(text):
            raise self.fail(
                node,
                path,
                f"expected an import path 'package.module:function', got {text!r}",
            )
        return text


class _Mapping:
    """A YAML mapping whose keys are checked: no duplicates, no unknown keys."""

    def __init__(self, reader: _Reader, node: yaml.MappingNode, path: str) -> None:
        self.reader = reader
        self.node = node
        self.path = path
        self._items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise reader.fail(key_node, path, "keys must be plain strings")
            key = str(reader.loader.construct_object(key_node))
            if key in self._items:
                first = self._items[key][0].start_mark.line + 1
                raise reader.fail(
                    key_node, self._join(key), f"duplicate key (first given on line {first})"
                )
            self._items[key] = (key_node, value_node)

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def items(self) -> list[tuple[str, yaml.Node]]:
        return [(k, v) for k, (_, v) in self._items.items()]

    def key_node(self, key: str) -> yaml.Node:
        return self._items[key][0]

    def has(self, key: str) -> bool:
        node = self._items.get(key)
        return node is not None and node[1].tag != "tag:yaml.org,2002:null"

    def check_keys(
        self, allowed: tuple[str, ...], *, hints: Mapping[str, str] | None = None
    ) -> None:
        for key, (key_node, _) in self._items.items():
            if key in allowed:
                continue
            hint = (hints or {}).get(key)
            message = hint or f"unknown key {key!r}; allowed keys: {', '.join(allowed)}"
            raise self.reader.fail(key_node, self._join(key), message)

    def get(
        self,
        key: str,
        convert: Callable[[yaml.Node, str], T],
        *,
        required: bool = False,
    ) -> T | None:
        entry = self._items.get(key)
        if entry is None or entry[1].tag == "tag:yaml.org,2002:null":
            if required:
                where = entry[1] if entry is not None else self.node
                raise self.reader.fail(where, self._join(key), "is required")
            return None
        return convert(entry[1], self._join(key))

    def require(self, key: str, convert: Callable[[yaml.Node, str], T]) -> T:
        value = self.get(key, convert, required=True)
        assert value is not None  # get(required=True) raised otherwise
        return value

    def lines(self) -> dict[str, str]:
        """``file:line`` of every key."""
        return {k: self.reader.where(key_node) for k, (key_node, _) in self._items.items()}

    def where(self, key: str | None = None) -> str:
        node = self._items[key][0] if key is not None and key in self._items else self.node
        return self.reader.where(node)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a scalar"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return f"{value!r} ({type(value).__name__})"


# -- sections --------------------------------------------------------------------------------
def _spark(r: _Reader, node: yaml.Node) -> SparkConfig:
    m = r.mapping(node, "spark")
    m.check_keys(("master", "app_name", "conf", "jars_dir"))
    return SparkConfig(
        master=m.get("master", r.string) or "local[*]",
        app_name=m.get("app_name", r.string) or "seeknal-spark",
        conf=m.get("conf", r.string_map) or {},
        jars_dir=m.get("jars_dir", r.string),
    )


def _store(r: _Reader, node: yaml.Node) -> StoreConfig:
    m = r.mapping(node, "store")
    m.check_keys(("path", "catalog"))
    path = m.get("path", r.string)
    catalog = m.get("catalog", r.string)
    if (path is None) == (catalog is None):
        raise r.fail(
            node,
            "store",
            "give exactly one of path (a folder or URI) or catalog "
            "('catalog.schema' for metastore tables)",
        )
    if catalog is not None:
        for part in catalog.split("."):
            try:
                validate_name(part, "catalog/schema")
            except InvalidNameError as exc:
                raise r.fail(m.key_node("catalog"), "store.catalog", str(exc)) from None
    return StoreConfig(path=path, catalog=catalog)


def _input(r: _Reader, name: str, node: yaml.Node, path: str, where: str) -> InputConfig:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return InputConfig(name=name, path=r.string(node, path), where=where)
    m = r.mapping(node, path)
    m.check_keys(("path", "table", "format", "options", "generator", "args"))
    given = [k for k in ("path", "table", "generator") if m.has(k)]
    if len(given) != 1:
        raise r.fail(
            node,
            path,
            "give exactly one of path, table or generator "
            f"('module:function' called with the session), got {given or 'none'}",
        )
    if m.has("args") and not m.has("generator"):
        raise r.fail(m.key_node("args"), f"{path}.args", "args only go with a generator")
    if m.has("format") and not m.has("path"):
        raise r.fail(m.key_node("format"), f"{path}.format", "format only goes with a path")
    args = m.get("args", r.any_mapping) or {}
    return InputConfig(
        name=name,
        path=m.get("path", r.string),
        table=m.get("table", r.string),
        format=m.get("format", lambda n, p: r.choice(n, p, _INPUT_FORMATS)),
        options=m.get("options", r.string_map) or {},
        generator=m.get("generator", r.import_path),
        args=args,
        where=where,
        lines=m.lines(),
    )


def _entity(r: _Reader, name: str, node: yaml.Node, path: str, where: str) -> EntityConfig:
    m = r.mapping(node, path)
    m.check_keys(("join_keys",))
    keys = m.require("join_keys", lambda n, p: r.string_list(n, p, name="join key"))
    if not keys:
        raise r.fail(node, f"{path}.join_keys", "needs at least one key column")
    return EntityConfig(name=name, join_keys=keys, where=where, lines=m.lines())


def _features(r: _Reader, node: yaml.Node, path: str) -> dict[str, str]:
    m = r.mapping(node, path)
    out: dict[str, str] = {}
    for key, value in m.items():
        key_path = f"{path}.{key}"
        try:
            validate_name(key, "feature")
        except InvalidNameError as exc:
            raise r.fail(m.key_node(key), key_path, str(exc)) from None
        type_name = r.string(value, key_path)
        try:
            parse_type(type_name)
        except ValueError as exc:
            raise r.fail(value, key_path, str(exc)) from None
        out[key] = type_name
    if not out:
        raise r.fail(node, path, "is empty; list features or omit the key to infer them")
    return out


def _feature_group(
    r: _Reader, name: str, node: yaml.Node, path: str, where: str
) -> FeatureGroupConfig:
    m = r.mapping(node, path)
    m.check_keys(
        (
            "entity",
            "event_time_col",
            "transform",
            "sql",
            "inputs",
            "features",
            "ttl",
            "created_time_col",
            "description",
            "owner",
            "tags",
            "version",
        ),
    )
    if m.has("transform") == m.has("sql"):
        raise r.fail(
            node,
            path,
            "give exactly one of transform ('module:function') or sql "
            "(SQL text naming the inputs as {name})",
        )
    return FeatureGroupConfig(
        name=name,
        entity=m.require("entity", r.string),
        event_time_col=m.require("event_time_col", lambda n, p: r.string(n, p, name="column")),
        transform=m.get("transform", r.import_path),
        sql=m.get("sql", r.string),
        inputs=m.get("inputs", lambda n, p: r.string_list(n, p, name="input")) or (),
        features=m.get("features", lambda n, p: _features(r, n, p)),
        ttl=m.get("ttl", r.duration),
        created_time_col=m.get("created_time_col", lambda n, p: r.string(n, p, name="column")),
        description=m.get("description", r.string) or "",
        owner=m.get("owner", r.string) or "",
        tags=m.get("tags", r.string_map) or {},
        version=m.get("version", lambda n, p: r.string(n, p, name="version")) or "v1",
        where=where,
        lines=m.lines(),
    )


def _lookup(r: _Reader, node: yaml.Node, path: str) -> LookupConfig:
    m = r.mapping(node, path)
    m.check_keys(("feature_group", "features", "version", "ttl", "prefix", "default"))
    default = m.get("default", lambda n, p: r.value(n))
    return LookupConfig(
        feature_group=m.require("feature_group", r.string),
        features=m.get("features", lambda n, p: r.string_list(n, p, name="feature")),
        version=m.get("version", lambda n, p: r.string(n, p, name="version")),
        ttl=m.get("ttl", r.duration),
        prefix=m.get("prefix", r.string),
        default=default,
        where=r.where(node),
        lines=m.lines(),
    )


def _training(r: _Reader, node: yaml.Node) -> TrainingConfig:
    m = r.mapping(node, "training")
    m.check_keys(("spine", "timestamp_col", "label_col", "output", "format"))
    return TrainingConfig(
        spine=m.require("spine", r.string),
        timestamp_col=m.require("timestamp_col", lambda n, p: r.string(n, p, name="column")),
        label_col=m.get("label_col", lambda n, p: r.string(n, p, name="column")),
        output=m.get("output", r.string),
        format=m.get("format", lambda n, p: r.choice(n, p, _TRAINING_FORMATS)) or "parquet",
        where=r.where(node),
        lines=m.lines(),
    )


_SECRET_HINT = (
    "never write a password in the config: put it in an environment variable and name "
    "the variable with password_env (e.g. password_env: REDIS_PASSWORD)"
)


def _online(r: _Reader, node: yaml.Node) -> OnlineConfig:
    m = r.mapping(node, "online")
    m.check_keys(("sink", "table", "embedded", "redis"))
    embedded = None
    if m.has("embedded"):
        e = r.mapping(_value_node(m, "embedded"), "online.embedded")
        e.check_keys(("path",))
        embedded = EmbeddedSinkConfig(path=e.get("path", r.string))
    redis = None
    if m.has("redis"):
        rm = r.mapping(_value_node(m, "redis"), "online.redis")
        rm.check_keys(
            ("url", "url_env", "password_env", "key_prefix", "socket_timeout"),
            hints={key: _SECRET_HINT for key in ("password", "pass", "secret", "auth")},
        )
        url = rm.get("url", r.string) or RedisSinkConfig.url
        if re.match(r"^rediss?://[^/@]*:[^/@]+@", url):
            raise r.fail(
                rm.key_node("url"), "online.redis.url", "the URL holds a password; " + _SECRET_HINT
            )
        redis = RedisSinkConfig(
            url=url,
            url_env=rm.get("url_env", r.string),
            password_env=rm.get("password_env", r.string),
            key_prefix=rm.get("key_prefix", r.string) or "seeknal",
            socket_timeout=rm.get("socket_timeout", r.number) or 30.0,
        )
    sink = m.get("sink", lambda n, p: r.choice(n, p, ("embedded", "redis"))) or "embedded"
    if sink == "redis" and redis is None:
        raise r.fail(
            m.key_node("sink"), "online.sink", "sink is redis but there is no online.redis section"
        )
    return OnlineConfig(
        sink=sink,
        table=m.get("table", lambda n, p: r.string(n, p, name="online table")),
        embedded=embedded,
        redis=redis,
    )


def _value_node(m: _Mapping, key: str) -> yaml.Node:
    return dict(m.items())[key]


def _named_section(
    r: _Reader,
    m: _Mapping,
    key: str,
    build: Callable[[_Reader, str, yaml.Node, str, str], T],
    what: str,
) -> dict[str, T]:
    if not m.has(key):
        return {}
    section = r.mapping(_value_node(m, key), key)
    out: dict[str, T] = {}
    for name, node in section.items():
        try:
            validate_name(name, what)
        except InvalidNameError as exc:
            raise r.fail(section.key_node(name), f"{key}.{name}", str(exc)) from None
        out[name] = build(r, name, node, f"{key}.{name}", section.where(name))
    return out


def _check_references(cfg: ProjectConfig) -> None:
    """Every entity, input and feature group named somewhere must be declared."""

    def fail(where: str, path: str, message: str) -> ConfigurationError:
        return ConfigurationError(f"{where}: {path}: {message}")

    for fg in cfg.feature_groups.values():
        path = f"feature_groups.{fg.name}"
        if fg.entity not in cfg.entities:
            raise fail(
                fg.at("entity"),
                f"{path}.entity",
                f"unknown entity {fg.entity!r}; declared entities: {sorted(cfg.entities)}",
            )
        for name in fg.inputs:
            if name not in cfg.inputs:
                raise fail(
                    fg.at("inputs"),
                    f"{path}.inputs",
                    f"unknown input {name!r}; declared inputs: {sorted(cfg.inputs)}",
                )
    for i, lookup in enumerate(cfg.lookups):
        if lookup.feature_group not in cfg.feature_groups:
            raise fail(
                lookup.at("feature_group"),
                f"lookups[{i}].feature_group",
                f"unknown feature group {lookup.feature_group!r}; declared: "
                f"{sorted(cfg.feature_groups)}",
            )
    if cfg.training is not None and cfg.training.spine not in cfg.inputs:
        raise fail(
            cfg.training.at("spine"),
            "training.spine",
            f"unknown input "
            f"{cfg.training.spine!r}; declare it under inputs (declared: "
            f"{sorted(cfg.inputs)})",
        )


_TOP_KEYS = (
    "project",
    "spark",
    "store",
    "inputs",
    "entities",
    "feature_groups",
    "lookups",
    "training",
    "online",
)


def parse_config(text: str, source: str = "<config>") -> ProjectConfig:
    """Parse the YAML text of a project file; ``source`` names it in error messages.

    Raises
    ------
    ConfigurationError
        On invalid YAML, an unknown key, a wrong type, a missing required key, a literal
        password, or a reference to an undeclared entity, input or feature group.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 0
            raise ConfigurationError(f"{source}:{line}: invalid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{source}: invalid YAML: {exc}") from None
        if node is None:
            raise ConfigurationError(f"{source}: the file is empty; see conf/example.yaml")
        r = _Reader(source, loader)
        root = r.mapping(node, "")
        root.check_keys(_TOP_KEYS)
        project = root.require("project", r.mapping)
        project.check_keys(("name", "description"))
        name = project.require("name", lambda n, p: r.string(n, p, name="project"))
        lookups: tuple[LookupConfig, ...] = ()
        if root.has("lookups"):
            lnode = _value_node(root, "lookups")
            if not isinstance(lnode, yaml.SequenceNode):
                raise r.fail(lnode, "lookups", f"expected a list of lookups, got {_kind(lnode)}")
            lookups = tuple(_lookup(r, n, f"lookups[{i}]") for i, n in enumerate(lnode.value))
        cfg = ProjectConfig(
            name=name,
            description=project.get("description", r.string) or "",
            store=root.require("store", lambda n, p: _store(r, n)),
            spark=root.get("spark", lambda n, p: _spark(r, n)) or SparkConfig(),
            inputs=_named_section(r, root, "inputs", _input, "input"),
            entities=_named_section(r, root, "entities", _entity, "entity"),
            feature_groups=_named_section(
                r, root, "feature_groups", _feature_group, "feature group"
            ),
            lookups=lookups,
            training=root.get("training", lambda n, p: _training(r, n)),
            online=root.get("online", lambda n, p: _online(r, n)) or OnlineConfig(),
            source=source,
        )
        _check_references(cfg)
        return cfg
    finally:
        loader.dispose()


def load_config(path: str | os.PathLike[str]) -> ProjectConfig:
    """Read and check a YAML project file.

    Parameters
    ----------
    path:
        The file, e.g. ``conf/example.yaml``.

    Raises
    ------
    ConfigurationError
        When the file is missing or invalid (the message names file, line and key).
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigurationError(
            f"config file {source!r} not found (working directory {os.getcwd()!r}); pass "
            "--config with the path of a project YAML such as conf/example.yaml"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {source!r}: {exc}") from None
    return parse_config(text, source)
