"""``seeknal-spark list | describe | history``: what the project declares and the store holds."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from seeknal_spark.app.versions import latest_version
from seeknal_spark.errors import NotFoundError
from seeknal_spark.interfaces.cli.common import emit, load_project, print_table, write_line

if TYPE_CHECKING:
    from seeknal_spark.store.feature_group import FeatureGroup

__all__ = [
    "describe",
    "describe_arguments",
    "history",
    "history_arguments",
    "list_",
    "list_arguments",
]


def list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _feature_count(fg: FeatureGroup | None) -> int | None:
    """Declared features of a group (of an event group: its aggregation features)."""
    if fg is None:
        return None
    if fg.is_event_group:
        return sum(len(agg.names) for agg in fg.aggregations)
    return None if fg.features is None else len(fg.features)


def list_(args: argparse.Namespace) -> int:
    """The declared and stored feature groups, as a table or JSON."""
    project = load_project(args)
    registered: dict[str, list[str]] = {}
    for definition in project.store.list_feature_groups():
        registered.setdefault(definition.name, []).append(definition.version)
    rows: list[dict[str, Any]] = []
    for name in [*project.feature_groups, *sorted(set(registered) - set(project.feature_groups))]:
        cfg = project.config.feature_groups.get(name)
        fg = project.feature_groups.get(name)
        rows.append(
            {
                "name": name,
                "entity": fg.entity.name if fg is not None else None,
                "version": cfg.version if cfg is not None else None,
                "stored_versions": registered.get(name, []),
                "features": _feature_count(fg),
                "in_config": cfg is not None,
                "description": cfg.description if cfg is not None else "",
            }
        )
    if args.json:
        emit({"feature_groups": rows})
        return 0
    table = [["NAME", "ENTITY", "VERSION", "STORED", "FEATURES", "DESCRIPTION"]]
    for row in rows:
        table.append(
            [
                row["name"],
                row["entity"] or "-",
                row["version"] or "-",
                ",".join(row["stored_versions"]) or "-",
                "-" if row["features"] is None else str(row["features"]),
                row["description"],
            ]
        )
    print_table(table)
    return 0


def describe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="feature group name")
    parser.add_argument("--version", help="version (default: the latest stored)")


def describe(args: argparse.Namespace) -> int:
    """A group version's stored definition and its declaration in the file (JSON)."""
    project = load_project(args)
    cfg = project.config.feature_groups.get(args.name)
    try:
        description: dict[str, Any] = project.store.describe(args.name, args.version)
        description["materialized"] = True
    except NotFoundError:
        if cfg is None:
            raise
        description = {
            "name": args.name,
            "version": args.version or cfg.version,
            "versions": [],
            "materialized": False,
        }
    if cfg is not None:
        fg = project.feature_groups[args.name]
        description["config"] = {
            "source": cfg.where,
            "entity": cfg.entity,
            "event_time_col": cfg.event_time_col,
            "transform": cfg.transform or ("sql" if cfg.sql is not None else None),
            "inputs": list(cfg.inputs),
            "version": cfg.version,
            "features": None if cfg.features is None else dict(cfg.features),
            "ttl_seconds": None if cfg.ttl is None else cfg.ttl.total_seconds(),
            "transform_hash": fg.transform_hash(),
        }
    write_line(json.dumps(description, indent=2, sort_keys=True, default=str))
    return 0


def history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="feature group name")
    parser.add_argument("--version", help="version (default: the one in the file)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def history(args: argparse.Namespace) -> int:
    """The Delta write history of a group version (default: the file's, else the latest)."""
    project = load_project(args)
    version = args.version
    if version is None:
        cfg = project.config.feature_groups.get(args.name)
        version = cfg.version if cfg is not None else latest_version(project.store, args.name)
    project.store.get_definition(args.name, version)  # a clear error for unknown names
    entries = project.store.history(args.name, version)
    if args.json:
        emit({"feature_group": args.name, "version": version, "history": entries})
        return 0
    table = [["DELTA", "TIMESTAMP", "OPERATION", "MODE", "WINDOW_START", "WINDOW_END", "HASH"]]
    for e in entries:
        table.append(
            [
                str(e["delta_version"]),
                str(e.get("timestamp") or "-"),
                str(e["operation"]),
                str(e.get("mode") or "-"),
                str(e.get("window_start") or "-"),
                str(e.get("window_end") or "-"),
                str(e.get("transform_hash") or "-")[:12],
            ]
        )
    print_table(table)
    return 0
