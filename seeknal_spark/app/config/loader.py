"""The YAML project file, parsed at the edge (CLI, ``jobs/``) into small frozen dataclasses.

Every key is checked: an unknown key, a wrong type, a missing required key or a reference
to something undeclared raises :class:`~seeknal_spark.errors.ConfigurationError` naming
the file, the line and the key path, e.g.::

    conf/example.yaml:79: feature_groups.customer_profile.ttl: expected a duration like
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
      customer_spend:                     # a group of stored features
        entity: customer
        event_time_col: event_time
        transform: "my_project.features:customer_spend"   # or sql: "SELECT ..."
        inputs: [transactions]
        features: {spend_7d: double}
        ttl: 30d
      customer_txn_windows:               # an event group: windows over raw events
        entity: customer
        event_time_col: ts
        inputs: [transactions]
        aggregations: [{column: amount, function: sum, windows: [1d, 7d]}]
    lookups:
      - {feature_group: customer_spend, features: [spend_7d], default: 0.0}
    on_demand:                                       # computed per request, see .on_demand
      - {name: spend_ratio, inputs: [amount, spend_7d], output_type: double,
         function: "my_project.features:spend_ratio"}
    training: {spine: churn_spine, timestamp_col: prediction_time, label_col: churned,
               inclusive: false}
    online:
      embedded: {path: ./runs/online}
      redis: {url: "redis://localhost:6379/0", password_env: REDIS_PASSWORD}
"""

from __future__ import annotations

import os

import yaml

from seeknal_spark.app.config.model import LookupConfig, OnlineConfig, ProjectConfig, SparkConfig
from seeknal_spark.app.config.on_demand import check_on_demand_config, parse_on_demand
from seeknal_spark.app.config.reader import Reader, kind
from seeknal_spark.app.config.sections import (
    TOP_KEYS,
    check_references,
    named_section,
    parse_entity,
    parse_feature_group,
    parse_input,
    parse_lookup,
    parse_online,
    parse_spark,
    parse_store,
    parse_training,
    value_node,
)
from seeknal_spark.errors import ConfigurationError

__all__ = ["load_config", "parse_config"]


def parse_config(text: str, source: str = "<config>") -> ProjectConfig:
    r"""Parse the YAML text of a project file; ``source`` names it in error messages.

    Examples
    --------
    >>> text = (
    ...     "project: {name: demo}\n"
    ...     "store: {path: /tmp/demo_store}\n"
    ...     "entities: {customer: {join_keys: [customer_id]}}\n"
    ... )
    >>> cfg = parse_config(text, "demo.yaml")
    >>> cfg.name, cfg.entities["customer"].join_keys
    ('demo', ('customer_id',))
    >>> parse_config("project: {name: demo}\nstore: {path: /s}\nstores: {}", "demo.yaml")
    Traceback (most recent call last):
    ...
    seeknal_spark.errors.ConfigurationError: demo.yaml:3: stores: unknown key 'stores'; ...

    Raises
    ------
    ConfigurationError
        On invalid YAML, an unknown key, a wrong type, a missing required key, a literal
        password, a reference to an undeclared entity, input or feature group, or an
        on-demand feature in a cycle or named like a looked-up feature.
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
        r = Reader(source, loader)
        root = r.mapping(node, "")
        root.check_keys(TOP_KEYS)
        project = root.require("project", r.mapping)
        project.check_keys(("name", "description"))
        name = project.require("name", lambda n, p: r.string(n, p, name="project"))
        lookups: tuple[LookupConfig, ...] = ()
        if root.has("lookups"):
            lnode = value_node(root, "lookups")
            if not isinstance(lnode, yaml.SequenceNode):
                raise r.fail(lnode, "lookups", f"expected a list of lookups, got {kind(lnode)}")
            lookups = tuple(parse_lookup(r, n, f"lookups[{i}]") for i, n in enumerate(lnode.value))
        cfg = ProjectConfig(
            name=name,
            description=project.get("description", r.string) or "",
            store=root.require("store", lambda n, p: parse_store(r, n)),
            spark=root.get("spark", lambda n, p: parse_spark(r, n)) or SparkConfig(),
            inputs=named_section(r, root, "inputs", parse_input, "input"),
            entities=named_section(r, root, "entities", parse_entity, "entity"),
            feature_groups=named_section(
                r, root, "feature_groups", parse_feature_group, "feature group"
            ),
            lookups=lookups,
            on_demand=root.get("on_demand", lambda n, p: parse_on_demand(r, n, p)) or (),
            training=root.get("training", lambda n, p: parse_training(r, n)),
            online=root.get("online", lambda n, p: parse_online(r, n)) or OnlineConfig(),
            source=source,
        )
        check_references(cfg)
        check_on_demand_config(cfg)
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
