"""The ``on_demand:`` section: request-time features declared in the project file.

Each item names a feature, its inputs, its output type and its function as an import
path; the function itself is imported when the project is built
(:func:`seeknal_spark.app.on_demand.build_on_demand`), like a feature group's transform::

    on_demand:
      - name: amount_vs_avg
        inputs: [amount, avg_amount]          # request fields (spine columns), looked-up
        output_type: double                   # features or other on-demand features
        function: "my_project.features:amount_vs_avg"
        mode: scalar                          # or pandas (Series in, Series out)
        description: the request amount against the customer's average

:func:`parse_on_demand` checks each item; :func:`check_on_demand_config` checks them
against the rest of the file: no cycle among them, no name of a looked-up feature or of
a spine column the file names. Every error names the file, the line and the feature.
"""

from __future__ import annotations

import graphlib

import yaml

from seeknal_spark.app.config.model import OnDemandConfig, ProjectConfig
from seeknal_spark.app.config.reader import Reader, kind
from seeknal_spark.definitions.on_demand import MODES, OUTPUT_TYPES
from seeknal_spark.errors import ConfigurationError

__all__ = ["check_on_demand_config", "parse_on_demand"]

KEYS = ("name", "inputs", "output_type", "function", "mode", "description")


def parse_on_demand(r: Reader, node: yaml.Node, path: str) -> tuple[OnDemandConfig, ...]:
    """``[{name, inputs, output_type, function, mode?, description?}, ...]`` checked item
    by item (keys, names, types, mode, import-path syntax, repeated names)."""
    if not isinstance(node, yaml.SequenceNode):
        raise r.fail(node, path, f"expected a list of on-demand features, got {kind(node)}")
    out: list[OnDemandConfig] = []
    first: dict[str, str] = {}
    for i, item in enumerate(node.value):
        item_path = f"{path}[{i}]"
        m = r.mapping(item, item_path)
        m.check_keys(KEYS)
        name = m.require("name", lambda n, p: r.string(n, p, name="on-demand feature"))
        what = f"on-demand feature {name!r}"
        if name in first:
            raise r.fail(
                m.key_node("name"),
                f"{item_path}.name",
                f"{what} is declared twice (first at "
                f"{first[name]}): give each on-demand feature its own name",
            )
        first[name] = r.where(item)
        inputs = m.require("inputs", lambda n, p: r.string_list(n, p, name="input"))
        if not inputs:
            raise r.fail(
                m.key_node("inputs"),
                f"{item_path}.inputs",
                f"{what} has no inputs: name the "
                "request fields and features its function reads, in its parameter order",
            )
        if name in inputs:
            raise r.fail(
                m.key_node("inputs"), f"{item_path}.inputs", f"{what} takes itself as an input"
            )

        def output_type(n: yaml.Node, p: str, what: str = what) -> str:
            text = r.string(n, p)
            if text.strip().lower() not in OUTPUT_TYPES:
                raise r.fail(
                    n,
                    p,
                    f"{what}: output_type {text!r} is not supported; use one of "
                    f"{sorted(set(OUTPUT_TYPES.values()))}",
                )
            return OUTPUT_TYPES[text.strip().lower()]

        def mode(n: yaml.Node, p: str, what: str = what) -> str:
            text = r.string(n, p)
            if text not in MODES:
                raise r.fail(n, p, f"{what}: mode {text!r} is not one of {list(MODES)}")
            return text

        out.append(
            OnDemandConfig(
                name=name,
                inputs=inputs,
                output_type=m.require("output_type", output_type),
                function=m.require("function", r.import_path),
                mode=m.get("mode", mode) or "scalar",
                description=m.get("description", r.string) or "",
                where=r.where(item),
                lines=m.lines(),
            )
        )
    return tuple(out)


def check_on_demand_config(cfg: ProjectConfig) -> None:
    """The on-demand features against each other and the rest of the file.

    Raises
    ------
    ConfigurationError
        Naming the file, line and feature: the features depend on each other in a
        cycle, or one has the name of a looked-up feature (lookup ``features``, else the
        group's declared ``features`` or aggregations; inferred features are checked
        when the training set is built) or of a spine column the file names (join keys
        of the looked-up entities, ``training.timestamp_col`` and ``label_col``).
    """
    if not cfg.on_demand:
        return
    taken = _taken_names(cfg)
    for i, od in enumerate(cfg.on_demand):
        if od.name in taken:
            raise _fail(
                od,
                i,
                "name",
                f"on-demand feature {od.name!r} has the name of {taken[od.name]}",
            )
    index = {od.name: i for i, od in enumerate(cfg.on_demand)}
    graph = {od.name: [i for i in od.inputs if i in index] for od in cfg.on_demand}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = [str(name) for name in reversed(exc.args[1])]
        od = cfg.on_demand[index[cycle[0]]]
        raise _fail(
            od,
            index[od.name],
            "inputs",
            f"on-demand feature {od.name!r} is in a cycle of on-demand features that "
            f"need each other: {' -> '.join(cycle)}; break it",
        ) from None


def _fail(od: OnDemandConfig, i: int, key: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"{od.at(key)}: on_demand[{i}].{key}: {message}")


def _taken_names(cfg: ProjectConfig) -> dict[str, str]:
    """Training-set columns the file names (looked-up features, spine columns) -> what
    each is and the fix, for the error of an on-demand feature of that name."""
    taken: dict[str, str] = {}
    if cfg.training is not None:
        taken[cfg.training.timestamp_col] = (
            "the spine time column (training.timestamp_col); rename it"
        )
        if cfg.training.label_col is not None:
            taken[cfg.training.label_col] = "the label column (training.label_col); rename it"
    for j, lookup in enumerate(cfg.lookups):
        group = cfg.feature_groups[lookup.feature_group]  # checked by check_references
        for key in cfg.entities[group.entity].join_keys:
            taken[key] = f"a join key of entity {group.entity!r} (a spine column); rename it"
        features: tuple[str, ...] | list[str] = lookup.features or ()
        if not features and group.features is not None:
            features = list(group.features)
        if not features and group.aggregations:
            features = [name for agg in group.aggregations for name in agg.names]
        for feature in features:
            taken[f"{lookup.prefix or ''}{feature}"] = (
                f"feature {feature!r} looked up from {lookup.feature_group!r} "
                f"(lookups[{j}] at {lookup.where}); rename it or give the lookup a prefix"
            )
    return taken
