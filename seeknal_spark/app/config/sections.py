"""The sections of a project file: each YAML section checked and built into its dataclass."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import yaml

from seeknal_spark.app.config.model import (
    EmbeddedSinkConfig,
    EntityConfig,
    FeatureGroupConfig,
    InputConfig,
    LookupConfig,
    OnlineConfig,
    ProjectConfig,
    RedisSinkConfig,
    SparkConfig,
    StoreConfig,
    TrainingConfig,
)
from seeknal_spark.app.config.reader import Reader, Section
from seeknal_spark.definitions.aggregation import Aggregation
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.definitions.types import parse_type
from seeknal_spark.errors import ConfigurationError, InvalidNameError

__all__ = [
    "TOP_KEYS",
    "check_references",
    "named_section",
    "parse_aggregations",
    "parse_entity",
    "parse_feature_group",
    "parse_input",
    "parse_lookup",
    "parse_online",
    "parse_spark",
    "parse_store",
    "parse_training",
    "value_node",
]

T = TypeVar("T")

INPUT_FORMATS = ("delta", "parquet", "csv", "json", "orc")
TRAINING_FORMATS = ("parquet", "delta")


def parse_spark(r: Reader, node: yaml.Node) -> SparkConfig:
    m = r.mapping(node, "spark")
    m.check_keys(("master", "app_name", "conf", "jars_dir"))
    return SparkConfig(
        master=m.get("master", r.string) or "local[*]",
        app_name=m.get("app_name", r.string) or "seeknal-spark",
        conf=m.get("conf", r.string_map) or {},
        jars_dir=m.get("jars_dir", r.string),
    )


def parse_store(r: Reader, node: yaml.Node) -> StoreConfig:
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


def parse_input(r: Reader, name: str, node: yaml.Node, path: str, where: str) -> InputConfig:
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
        format=m.get("format", lambda n, p: r.choice(n, p, INPUT_FORMATS)),
        options=m.get("options", r.string_map) or {},
        generator=m.get("generator", r.import_path),
        args=args,
        where=where,
        lines=m.lines(),
    )


def parse_entity(r: Reader, name: str, node: yaml.Node, path: str, where: str) -> EntityConfig:
    m = r.mapping(node, path)
    m.check_keys(("join_keys",))
    keys = m.require("join_keys", lambda n, p: r.string_list(n, p, name="join key"))
    if not keys:
        raise r.fail(node, f"{path}.join_keys", "needs at least one key column")
    return EntityConfig(name=name, join_keys=keys, where=where, lines=m.lines())


def parse_features(r: Reader, node: yaml.Node, path: str) -> dict[str, str]:
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


def parse_aggregations(r: Reader, node: yaml.Node, path: str) -> tuple[Aggregation, ...]:
    """``[{column, function, windows, name?}, ...]`` into
    :class:`~seeknal_spark.definitions.aggregation.Aggregation` objects, each checked
    here (an error names the file and line of the item)."""
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise r.fail(node, path, "expected a non-empty list of aggregations")
    out = []
    for i, item in enumerate(node.value):
        item_path = f"{path}[{i}]"
        m = r.mapping(item, item_path)
        m.check_keys(("column", "function", "windows", "name"))
        column = m.require("column", r.string)
        function = m.require("function", r.string)
        windows = m.require("windows", lambda n, p: r.string_list(n, p, name=None))
        names = m.get("name", lambda n, p: r.string_list(n, p, name="feature"))
        try:
            out.append(Aggregation(column, function, windows, name=names))
        except ConfigurationError as exc:
            raise r.fail(item, item_path, str(exc)) from None
    return tuple(out)


def parse_feature_group(
    r: Reader, name: str, node: yaml.Node, path: str, where: str
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
            "aggregations",
        ),
    )
    aggregations = m.get("aggregations", lambda n, p: parse_aggregations(r, n, p))
    if m.has("transform") and m.has("sql"):
        raise r.fail(node, path, "give one of transform or sql, not both")
    if aggregations is None and not m.has("transform") and not m.has("sql"):
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
        features=m.get("features", lambda n, p: parse_features(r, n, p)),
        ttl=m.get("ttl", r.duration),
        created_time_col=m.get("created_time_col", lambda n, p: r.string(n, p, name="column")),
        description=m.get("description", r.string) or "",
        owner=m.get("owner", r.string) or "",
        tags=m.get("tags", r.string_map) or {},
        version=m.get("version", lambda n, p: r.string(n, p, name="version")) or "v1",
        aggregations=aggregations,
        where=where,
        lines=m.lines(),
    )


def parse_lookup(r: Reader, node: yaml.Node, path: str) -> LookupConfig:
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


def parse_training(r: Reader, node: yaml.Node) -> TrainingConfig:
    m = r.mapping(node, "training")
    m.check_keys(("spine", "timestamp_col", "label_col", "output", "format", "inclusive"))
    return TrainingConfig(
        spine=m.require("spine", r.string),
        timestamp_col=m.require("timestamp_col", lambda n, p: r.string(n, p, name="column")),
        label_col=m.get("label_col", lambda n, p: r.string(n, p, name="column")),
        output=m.get("output", r.string),
        format=m.get("format", lambda n, p: r.choice(n, p, TRAINING_FORMATS)) or "parquet",
        inclusive=m.get("inclusive", r.boolean) is not False,
        where=r.where(node),
        lines=m.lines(),
    )


_SECRET_HINT = (
    "never write a password in the config: put it in an environment variable and name "
    "the variable with password_env (e.g. password_env: REDIS_PASSWORD)"
)


def parse_online(r: Reader, node: yaml.Node) -> OnlineConfig:
    m = r.mapping(node, "online")
    m.check_keys(("sink", "table", "embedded", "redis"))
    embedded = None
    if m.has("embedded"):
        e = r.mapping(value_node(m, "embedded"), "online.embedded")
        e.check_keys(("path",))
        embedded = EmbeddedSinkConfig(path=e.get("path", r.string))
    redis = None
    if m.has("redis"):
        rm = r.mapping(value_node(m, "redis"), "online.redis")
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


def value_node(m: Section, key: str) -> yaml.Node:
    return dict(m.items())[key]


def named_section(
    r: Reader,
    m: Section,
    key: str,
    build: Callable[[Reader, str, yaml.Node, str, str], T],
    what: str,
) -> dict[str, T]:
    if not m.has(key):
        return {}
    section = r.mapping(value_node(m, key), key)
    out: dict[str, T] = {}
    for name, node in section.items():
        try:
            validate_name(name, what)
        except InvalidNameError as exc:
            raise r.fail(section.key_node(name), f"{key}.{name}", str(exc)) from None
        out[name] = build(r, name, node, f"{key}.{name}", section.where(name))
    return out


def check_references(cfg: ProjectConfig) -> None:
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


TOP_KEYS = (
    "project",
    "spark",
    "store",
    "inputs",
    "entities",
    "feature_groups",
    "lookups",
    "on_demand",
    "training",
    "online",
)
