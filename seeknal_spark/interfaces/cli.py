"""The ``seeknal-spark`` command line.

Subcommands read a project file (``--config conf/example.yaml`` by default)::

    seeknal-spark materialize --start 2024-01-01 --end 2024-03-01 --interval 1d
    seeknal-spark list
    seeknal-spark describe customer_spend
    seeknal-spark history customer_spend --version v1
    seeknal-spark train --output runs/training.parquet
    seeknal-spark serve --as-of 2024-03-31
    seeknal-spark parity --schema model/feature_schema.json --table customer_features --values
    seeknal-spark drift --reference train.parquet --current served.parquet --out drift.html
    seeknal-spark run-example

Errors print one line on stderr and exit non-zero (1 for a failed job, 2 for a bad
argument or configuration); ``--debug`` shows the traceback instead.

Adding a subcommand is two functions and one line: ``_<name>_arguments(parser)`` declares
its options, ``_<name>(args) -> int`` runs it, and a :class:`Command` entry in
:data:`COMMANDS` wires them. ``jobs/*.py`` call :func:`main` with their subcommand, so a
spark-submit job and the CLI share one implementation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

from seeknal_spark._timestamps import to_utc_datetime
from seeknal_spark.app.config import parse_duration
from seeknal_spark.errors import ConfigurationError, NotFoundError, SeeknalError

__all__ = ["COMMANDS", "Command", "build_parser", "configure_logging", "main", "parse_time"]

logger = logging.getLogger("seeknal_spark.interfaces.cli")

DEFAULT_CONFIG = "conf/example.yaml"
PROG = "seeknal-spark"


class UsageError(Exception):
    """A bad command-line argument (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line help, argument declarations and runner."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# -- argument helpers ----------------------------------------------------------------------
def parse_time(text: str, option: str = "time") -> datetime:
    """A UTC datetime from ``2024-01-01``, ``2024-01-01T06:00`` or ``...T06:00:00+02:00``.

    Naive values are UTC.
    """
    try:
        return to_utc_datetime(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise UsageError(
            f"{option}: expected a date or ISO timestamp like 2024-01-01 or "
            f"2024-01-01T06:00:00Z, got {text!r}"
        ) from None


def _duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _common(
    parser: argparse.ArgumentParser, *, config: bool = True, optional_config: bool = False
) -> None:
    if optional_config:
        parser.add_argument(
            "--config",
            default=None,
            metavar="FILE",
            help="project YAML, for its Spark settings (default: none)",
        )
    elif config:
        parser.add_argument(
            "--config",
            default=DEFAULT_CONFIG,
            metavar="FILE",
            help=f"project YAML (default: {DEFAULT_CONFIG})",
        )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--log-level",
        default=None,
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING (default) or ERROR",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per log line (structured logs for jobs)",
    )


class _JsonFormatter(logging.Formatter):
    _STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@contextlib.contextmanager
def configure_logging(level: str | None = None, fmt: str = "text") -> Iterator[None]:
    """Send log records to stderr as text or one JSON object per line, while in the block.

    The root logger's level and handlers are restored afterwards, so calling the CLI in
    process (tests, notebooks, Airflow) leaves logging as it was.
    """
    name = (level or "WARNING").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        raise UsageError(f"--log-level: unknown level {level!r}; use DEBUG, INFO, WARNING, ERROR")
    root = logging.getLogger()
    py4j = logging.getLogger("py4j")
    saved = (root.level, py4j.level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(numeric)
    py4j.setLevel(max(numeric, logging.WARNING))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        py4j.setLevel(saved[1])


def _project(args: argparse.Namespace) -> Any:
    from seeknal_spark.app.project import Project

    return Project.load(args.config)


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, default=str, sort_keys=True), flush=True)


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


# -- materialize ---------------------------------------------------------------------------
def _materialize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feature-group",
        "-g",
        action="append",
        dest="feature_groups",
        metavar="NAME",
        help="a feature group to write (repeat for several; default: all, in file order)",
    )
    parser.add_argument("--start", required=True, help="window start, e.g. 2024-01-01 (UTC)")
    parser.add_argument("--end", help="window end, exclusive (default: open-ended)")
    parser.add_argument(
        "--interval", help="split [start, end) into windows of this length (1d, 12h, 7d)"
    )
    parser.add_argument("--version", help="feature-group version (default: from the file)")
    parser.add_argument(
        "--mode",
        choices=("overwrite", "append", "merge"),
        default="overwrite",
        help="how each window is written (default: overwrite)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rewrite windows already written with the same transform",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress line even on a terminal"
    )


def _materialize(args: argparse.Namespace) -> int:
    from seeknal_spark._progress import Progress
    from seeknal_spark.app.project import MaterializeSummary, WindowResult, split_windows
    from seeknal_spark.definitions.naming import validate_name

    began = time.monotonic()
    start = parse_time(args.start, "--start")
    end = None if args.end is None else parse_time(args.end, "--end")
    interval = None if args.interval is None else _duration(args.interval, "--interval")
    if args.version is not None:
        validate_name(args.version, "version")
    try:
        windows_per_group = len(split_windows(start, end, interval))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    project = _project(args)
    names = args.feature_groups or list(project.feature_groups)
    for name in names:
        project.feature_group(name)
    done: list[WindowResult] = []
    context = {
        "command": "materialize",
        "project": project.config.name,
        "start": _iso(start),
        "end": _iso(end),
        "interval": args.interval,
        "mode": args.mode,
        "force": args.force,
    }
    progress = Progress(
        windows_per_group * len(names),
        label="materialize",
        enabled=False if args.no_progress else None,
    )

    def on_window(result: WindowResult) -> None:
        done.append(result)
        progress.advance(rows=result.rows, skipped=result.status == "skipped")

    try:
        with progress:
            summary = project.materialize(
                start,
                end,
                feature_groups=names,
                interval=interval,
                version=args.version,
                mode=args.mode,
                force=args.force,
                on_window=on_window,
            )
    except Exception as exc:
        partial = MaterializeSummary(done, time.monotonic() - began).to_dict()
        partial.update(context, status="error", error=_one_line(exc))
        _emit(partial)
        raise
    payload = summary.to_dict()
    payload.update(context)
    payload["duration_s"] = round(time.monotonic() - began, 3)
    _emit(payload)
    return 0


# -- list / describe / history ---------------------------------------------------------------
def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _list(args: argparse.Namespace) -> int:
    project = _project(args)
    registered: dict[str, list[str]] = {}
    for definition in project.store.list_feature_groups():
        registered.setdefault(definition.name, []).append(definition.version)
    rows = []
    for name in [*project.feature_groups, *sorted(set(registered) - set(project.feature_groups))]:
        cfg = project.config.feature_groups.get(name)
        fg = project.feature_groups.get(name)
        rows.append(
            {
                "name": name,
                "entity": fg.entity.name if fg is not None else None,
                "version": cfg.version if cfg is not None else None,
                "stored_versions": registered.get(name, []),
                "features": None if fg is None or fg.features is None else len(fg.features),
                "in_config": cfg is not None,
                "description": cfg.description if cfg is not None else "",
            }
        )
    if args.json:
        _emit({"feature_groups": rows})
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
    _print_table(table)
    return 0


def _describe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="feature group name")
    parser.add_argument("--version", help="version (default: the latest stored)")


def _describe(args: argparse.Namespace) -> int:
    project = _project(args)
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
            "transform": cfg.transform or "sql",
            "inputs": list(cfg.inputs),
            "version": cfg.version,
            "features": None if cfg.features is None else dict(cfg.features),
            "ttl_seconds": None if cfg.ttl is None else cfg.ttl.total_seconds(),
            "transform_hash": fg.transform_hash(),
        }
    print(json.dumps(description, indent=2, sort_keys=True, default=str))
    return 0


def _history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="feature group name")
    parser.add_argument("--version", help="version (default: the one in the file)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _history(args: argparse.Namespace) -> int:
    project = _project(args)
    version = args.version
    if version is None:
        cfg = project.config.feature_groups.get(args.name)
        known = project.store.versions(args.name)
        version = cfg.version if cfg is not None else (known[-1] if known else "v1")
    project.store.get_definition(args.name, version)  # a clear error for unknown names
    entries = project.store.history(args.name, version)
    if args.json:
        _emit({"feature_group": args.name, "version": version, "history": entries})
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
    _print_table(table)
    return 0


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# -- train -----------------------------------------------------------------------------------
_DATA_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".orc": "orc"}


def _data_format(path: str, fmt: str | None) -> str:
    """``fmt``, else from the path's suffix, else delta (a ``_delta_log``), else parquet."""
    if fmt:
        return fmt
    lowered = path.lower().rstrip("/")
    for suffix, name in _DATA_SUFFIXES.items():
        if lowered.endswith(suffix):
            return name
    if lowered.endswith(".delta") or os.path.isdir(os.path.join(path, "_delta_log")):
        return "delta"
    return "parquet"


def _read_data(spark: Any, path: str, fmt: str | None) -> Any:
    chosen = _data_format(path, fmt)
    reader = spark.read.format(chosen)
    if chosen == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    if "://" not in path and not os.path.exists(path):
        raise NotFoundError(
            f"no data at {path!r}: check the path (working directory {os.getcwd()!r})"
        )
    return reader.load(path)


def _write_text(spark: Any, path: str, text: str) -> None:
    """A small text file: a local file, or (URIs such as s3a://) a one-part Spark text folder."""
    if "://" in path and not path.startswith("file:"):
        frame = spark.createDataFrame([(text,)], "value string")
        frame.coalesce(1).write.mode("overwrite").text(path)
        return
    local = path[len("file:") :] if path.startswith("file:") else path
    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    with open(local, "w", encoding="utf-8") as handle:
        handle.write(text)


def _beside(output: str, suffix: str) -> str:
    return output.rstrip("/") + suffix


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spine", help="an input name of the project file or a path (default: training.spine)"
    )
    parser.add_argument("--spine-format", help="format of a spine path (default: from the name)")
    parser.add_argument(
        "--output", help="where to write the training set (default: training.output)"
    )
    parser.add_argument(
        "--format", choices=("parquet", "delta"), help="default: training.format (parquet)"
    )
    parser.add_argument(
        "--manifest",
        metavar="FILE",
        help="rebuild exactly the training set of this manifest (same Delta versions)",
    )
    parser.add_argument("--feature-start-time", help="ignore feature rows older than this")


def _train(args: argparse.Namespace) -> int:
    from seeknal_spark.training.historical import TrainingManifest

    began = time.monotonic()
    project = _project(args)
    training = project.config.training
    spine_name = args.spine or (training.spine if training is not None else None)
    output = args.output or (training.output if training is not None else None)
    if spine_name is None or output is None:
        raise UsageError(
            "train needs a spine and an output: pass --spine and --output or add a training: "
            f"section (spine, timestamp_col, output) to {args.config}"
        )
    fmt = args.format or (training.format if training is not None else "parquet")
    start = (
        None
        if args.feature_start_time is None
        else parse_time(args.feature_start_time, "--feature-start-time")
    )
    as_of = None
    if args.manifest is not None:
        try:
            with open(args.manifest, encoding="utf-8") as handle:
                as_of = TrainingManifest.from_json(handle.read())
        except FileNotFoundError:
            raise ConfigurationError(f"--manifest: no manifest file {args.manifest!r}") from None
    hist = project.historical()
    if spine_name in project.inputs:
        spine = project.read_input(spine_name)
    else:
        spine = _read_data(project.spark, spine_name, args.spine_format)
    label = training.label_col if training is not None else None
    if label is not None and label not in spine.columns:
        raise ConfigurationError(
            f"the spine {spine_name!r} has no label column {label!r} (training.label_col); "
            f"its columns are {spine.columns}"
        )
    frame = hist.to_dataframe(spine, feature_start_time=start, as_of=as_of)
    frame.write.mode("overwrite").format(fmt).save(output)
    manifest = hist.manifest
    assert manifest is not None  # set by to_dataframe
    manifest_path = _beside(output, ".manifest.json")
    schema_path = _beside(output, ".schema.json")
    _write_text(
        project.spark,
        manifest_path,
        json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n",
    )
    _write_text(project.spark, schema_path, hist.feature_schema().to_json())
    rows = project.spark.read.format(fmt).load(output).count()
    _emit(
        {
            "command": "train",
            "status": "ok",
            "project": project.config.name,
            "spine": spine_name,
            "output": output,
            "format": fmt,
            "rows": rows,
            "features": [name for name, _, _ in hist.output_features()],
            "manifest": manifest_path,
            "schema": schema_path,
            "versions": {e.feature_group: e.version for e in manifest.lookups},
            "delta_versions": {e.feature_group: e.delta_version for e in manifest.lookups},
            "duration_s": round(time.monotonic() - began, 3),
        }
    )
    return 0


# -- serve ---------------------------------------------------------------------------------
def _online_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", help="online table name (default: online.table of the file)")
    parser.add_argument(
        "--sink", choices=("embedded", "redis"), help="online sink (default: online.sink)"
    )


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    _online_arguments(parser)
    parser.add_argument(
        "--as-of",
        help="snapshot time, e.g. 2024-03-31 (default: now, UTC); features older "
        "than their TTL at that time are not served",
    )
    parser.add_argument(
        "--expire-keys", action="store_true", help="keys expire at as_of + their group's TTL"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress lines even on a terminal"
    )


def _serve(args: argparse.Namespace) -> int:
    from seeknal_spark.online.export import serve_historical

    began = time.monotonic()
    project = _project(args)
    name = project.online_table_name(args.table)
    sink = project.online_sink(args.sink)
    as_of = None if args.as_of is None else parse_time(args.as_of, "--as-of")
    hist = project.historical()
    table = serve_historical(
        hist,
        name=name,
        sink=sink,
        as_of=as_of,
        expire_keys=args.expire_keys,
        progress=False if args.no_progress else None,
    )
    meta = table.metadata
    _emit(
        {
            "command": "serve",
            "status": "ok",
            "project": project.config.name,
            "table": name,
            "sink": sink.describe(),
            "generation": meta["generation"],
            "as_of": meta["as_of"],
            "keys_written": sum(int(lk["keys_written"]) for lk in meta["lookups"]),
            "lookups": {
                lk["feature_group"]: {
                    "version": lk["version"],
                    "keys": lk["keys_written"],
                    "delta_version": lk["delta_version"],
                }
                for lk in meta["lookups"]
            },
            "features": table.feature_names,
            "duration_s": round(time.monotonic() - began, 3),
        }
    )
    return 0


# -- parity --------------------------------------------------------------------------------
def _parity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schema", required=True, metavar="FILE", help="the model's feature_schema.json"
    )
    _online_arguments(parser)
    parser.add_argument(
        "--values",
        action="store_true",
        help="also compare served values with the point-in-time join (the project's lookups)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="keys compared per lookup (default: all, up to 10000)",
    )


def _parity(args: argparse.Namespace) -> int:
    from seeknal_spark.errors import ParityError
    from seeknal_spark.monitoring.parity import check_values, schema_problems
    from seeknal_spark.online.table import OnlineTable
    from seeknal_spark.training.schema import FeatureSchema

    began = time.monotonic()
    if args.sample is not None and args.sample < 1:
        raise UsageError(f"--sample: give a positive number of keys, got {args.sample}")
    schema = FeatureSchema.load(args.schema)
    project = _project(args)
    name = project.online_table_name(args.table)
    table = OnlineTable.open(name, sink=project.online_sink(args.sink))
    problems = schema_problems(schema, table.metadata)
    payload: dict[str, Any] = {
        "command": "parity",
        "schema": args.schema,
        "table": name,
        "features": len(schema.features),
        "schema_ok": not problems,
        "problems": list(problems),
    }
    if args.values:
        if problems:
            payload["values"] = "skipped: the schema check failed"
        else:
            report = check_values(table, project.historical(), sample=args.sample)
            payload["values"] = report.to_dict()
            for feature, count in report.mismatches.items():
                if count:
                    examples = "; ".join(
                        f"key {k}: offline {a!r} online {b!r}"
                        for k, a, b in report.examples[feature]
                    )
                    problems.append(
                        f"feature {feature!r}: {count} of {report.keys_checked} keys differ, "
                        f"e.g. {examples}"
                    )
    payload["status"] = "ok" if not problems else "failed"
    payload["duration_s"] = round(time.monotonic() - began, 3)
    _emit(payload)
    if problems:
        raise ParityError(
            f"parity failed for online table {name!r} and {args.schema}: " + " | ".join(problems),
            problems,
        )
    return 0


# -- drift ---------------------------------------------------------------------------------
def _drift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference", required=True, metavar="PATH", help="reference data, e.g. the training set"
    )
    parser.add_argument(
        "--current", required=True, metavar="PATH", help="current data, e.g. served values"
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="the HTML report to write")
    parser.add_argument(
        "--features",
        nargs="+",
        metavar="NAME",
        help="features to compare (default: the supported columns both sides share)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="NAME",
        help="columns never compared (keys, times, labels)",
    )
    parser.add_argument("--format", help="format of both inputs (default: from each path)")
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a drift threshold, e.g. psi_alert=0.3 (repeat for several)",
    )
    parser.add_argument(
        "--fail-on-alert", action="store_true", help="exit 1 when any feature has an alert"
    )


def _drift(args: argparse.Namespace) -> int:
    from seeknal_spark.app.config import SparkConfig
    from seeknal_spark.app.project import session_for
    from seeknal_spark.monitoring.drift import DriftThresholds, compute_drift

    began = time.monotonic()
    values: dict[str, float] = {}
    for item in args.threshold:
        key, sep, raw = item.partition("=")
        try:
            values[key.strip()] = float(raw)
        except ValueError:
            raise UsageError(f"--threshold: expected NAME=NUMBER, got {item!r}") from None
        if not sep:
            raise UsageError(f"--threshold: expected NAME=NUMBER, got {item!r}")
    thresholds = DriftThresholds.from_mapping(values)
    if args.config is not None:
        spark = _project(args).spark
    else:
        spark = session_for(SparkConfig(app_name="seeknal-spark-drift"))
    reference = _read_data(spark, args.reference, args.format)
    current = _read_data(spark, args.current, args.format)
    report = compute_drift(
        reference, current, args.features, exclude=args.exclude, thresholds=thresholds
    )
    written = report.to_html(args.out)
    alerts = [str(a) for a in report.alerts]
    _emit(
        {
            "command": "drift",
            "status": "alert" if alerts else "ok",
            "reference": args.reference,
            "current": args.current,
            "report": str(written),
            "features": [
                {
                    "feature": f.feature,
                    "kind": f.kind,
                    "status": f.status,
                    "psi": f.psi,
                    "ks": f.ks,
                    "null_rate_change": f.null_rate_change,
                }
                for f in report.features
            ],
            "skipped": list(report.skipped),
            "alerts": alerts,
            "warnings": [str(w) for w in report.warnings],
            "duration_s": round(time.monotonic() - began, 3),
        }
    )
    if alerts and args.fail_on_alert:
        raise SeeknalError(
            f"drift alert(s) on {len(alerts)} metric(s): "
            + "; ".join(alerts)
            + f" (report: {written})"
        )
    return 0


# -- run-example ---------------------------------------------------------------------------
def _run_example_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        default=os.path.join("runs", "example"),
        help="folder for the generated data, store, model and reports (default: runs/example)",
    )
    parser.add_argument("--customers", type=int, default=500, help="number of customers")
    parser.add_argument("--days", type=int, default=90, help="number of days of data")
    parser.add_argument("--start", default="2024-01-01", help="first day of data")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--interval", help="write windows of this length (default: one)")
    parser.add_argument("--customer", help="customer to predict for (default: picked)")
    parser.add_argument("--trees", type=int, default=100, help="trees of the random forest")


def _run_example(args: argparse.Namespace) -> int:
    from seeknal_spark.example import run_example
    from seeknal_spark.example.run import format_summary

    summary = run_example(
        args.workdir,
        n_customers=args.customers,
        n_days=args.days,
        start=parse_time(args.start, "--start").date(),
        seed=args.seed,
        interval=None if args.interval is None else _duration(args.interval, "--interval"),
        customer_id=args.customer,
        n_estimators=args.trees,
    )
    print(format_summary(summary), flush=True)
    _emit(summary)
    return 0


#: Every subcommand, in the order ``--help`` lists them.
COMMANDS: list[Command] = [
    Command(
        "materialize",
        "compute feature groups for a time range and store them",
        _materialize_arguments,
        _materialize,
    ),
    Command(
        "list",
        "list the project's feature groups and their stored versions",
        _list_arguments,
        _list,
    ),
    Command("describe", "show a feature group's definition (JSON)", _describe_arguments, _describe),
    Command(
        "history",
        "show the Delta write history of a feature group version",
        _history_arguments,
        _history,
    ),
    Command(
        "train",
        "build a point-in-time training set from a spine, with its manifest",
        _train_arguments,
        _train,
    ),
    Command("serve", "export the project's lookups to the online store", _serve_arguments, _serve),
    Command(
        "parity",
        "check an online table can serve a model (exit 1 when it cannot)",
        _parity_arguments,
        _parity,
    ),
    Command(
        "drift",
        "compare reference and current feature distributions, write HTML",
        _drift_arguments,
        _drift,
    ),
    Command(
        "run-example",
        "run the churn example end to end (data, train, serve, parity, predict, drift)",
        _run_example_arguments,
        _run_example,
    ),
]

_NO_CONFIG = {"run-example"}
#: Commands whose --config is optional (used only for Spark settings when given).
_OPTIONAL_CONFIG = {"drift"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`COMMANDS`."""
    from seeknal_spark import __version__

    parser = _Parser(
        prog=PROG,
        description="Spark feature store: feature groups on versioned Delta tables.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        _common(
            child,
            config=command.name not in _NO_CONFIG,
            optional_config=command.name in _OPTIONAL_CONFIG,
        )
        command.add_arguments(child)
        child.set_defaults(run=command.run)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    if isinstance(exc, (SeeknalError, UsageError)):
        return first
    return f"{type(exc).__name__}: {first}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 bad argument/config)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    try:
        with configure_logging(args.log_level, args.log_format):
            import seeknal_spark

            logger.info(
                "seeknal-spark %s %s (package at %s)",
                seeknal_spark.__version__,
                args.command,
                os.path.dirname(seeknal_spark.__file__),
            )
            try:
                return int(args.run(args))
            except Exception as exc:
                if not isinstance(exc, (SeeknalError, UsageError)):
                    logger.debug("unexpected error", exc_info=True)
                raise
    except Exception as exc:
        if args.debug:
            raise
        code = 2 if isinstance(exc, (UsageError, ConfigurationError, ValueError)) else 1
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
