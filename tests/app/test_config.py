"""The YAML project file: parsing, and errors that name the file, key and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from seeknal_spark.app.config import (
    EmbeddedSinkConfig,
    FeatureGroupConfig,
    ProjectConfig,
    load_config,
    parse_config,
    parse_duration,
)
from seeknal_spark.app.project import Project
from seeknal_spark.errors import ConfigurationError, NotFoundError

EXAMPLE = Path(__file__).resolve().parents[2] / "conf" / "example.yaml"

MINIMAL = """\
project:
  name: demo
store:
  path: ./store
inputs:
  txns: {path: data/txns.parquet}
entities:
  customer: {join_keys: [customer_id]}
feature_groups:
  spend:
    entity: customer
    event_time_col: event_time
    transform: "pkg.mod:spend"
    inputs: [txns]
"""


def passthrough(transactions: DataFrame) -> DataFrame:
    """A transform the project file below imports by path."""
    return transactions


def _error(text: str, source: str = "demo.yaml") -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_config(text, source)
    return str(info.value)


def test_example_config_parses() -> None:
    cfg = load_config(EXAMPLE)
    assert isinstance(cfg, ProjectConfig)
    assert cfg.name == "example"
    assert cfg.store.path == "./runs/example_store"
    assert list(cfg.feature_groups) == ["customer_spend", "customer_profile"]
    spend = cfg.feature_groups["customer_spend"]
    assert spend.transform is None and spend.sql is None and spend.event_time_col == "ts"
    assert spend.aggregations is not None and spend.ttl is None and spend.features is None
    assert [n for a in spend.aggregations for n in a.feature_names()] == [
        "spend_7d",
        "spend_30d",
        "txn_count_30d",
        "avg_amount_30d",
        "last_txn_time",
    ]
    profile = cfg.feature_groups["customer_profile"]
    assert profile.transform is None and profile.sql is not None and "{customers}" in profile.sql
    # the YAML anchor gives every generator the same arguments
    assert {i.args["seed"] for i in cfg.inputs.values()} == {42}
    assert cfg.entities["customer"].join_keys == ("customer_id",)
    assert [lk.feature_group for lk in cfg.lookups] == ["customer_spend", "customer_profile"]
    assert cfg.training is not None and cfg.training.spine == "churn_spine"
    assert cfg.training.inclusive is False
    assert cfg.online.embedded == EmbeddedSinkConfig(path="./runs/example_online")
    assert cfg.online.redis is not None
    assert cfg.online.redis.password_env == "SEEKNAL_REDIS_PASSWORD"
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == "4"


def test_minimal_config_defaults() -> None:
    cfg = parse_config(MINIMAL)
    fg = cfg.feature_groups["spend"]
    assert fg == FeatureGroupConfig(
        name="spend",
        entity="customer",
        event_time_col="event_time",
        transform="pkg.mod:spend",
        inputs=("txns",),
    )
    assert fg.version == "v1"
    assert cfg.spark.master == "local[*]"
    assert cfg.online.sink == "embedded" and cfg.online.redis is None
    with pytest.raises(AttributeError):
        cfg.name = "other"  # type: ignore[misc]


def test_unknown_top_level_key_names_file_and_line() -> None:
    message = _error(MINIMAL + "featuregroups: {}\n")
    assert message.startswith("demo.yaml:15: featuregroups: unknown key 'featuregroups'")
    assert "feature_groups" in message  # lists the allowed keys


def test_unknown_nested_key_names_path_and_line() -> None:
    text = MINIMAL.replace("    inputs: [txns]\n", "    inputs: [txns]\n    tll: 30d\n")
    message = _error(text)
    assert message.startswith("demo.yaml:15: feature_groups.spend.tll: unknown key 'tll'")
    assert "ttl" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    ttl: 30\n", "feature_groups.spend.ttl: expected a duration like '30d'"),
        ("    ttl: soon\n", "feature_groups.spend.ttl: expected a duration like '30d'"),
        ("    version: 2\n", "feature_groups.spend.version: expected a string, got 2 (int)"),
        ("    tags: [a, b]\n", "feature_groups.spend.tags: expected a mapping"),
        ("    features: {spend: dubble}\n", "feature_groups.spend.features.spend: unknown type"),
        ("    owner: {a: 1}\n", "feature_groups.spend.owner: expected a string, got a mapping"),
    ],
)
def test_wrong_types_are_rejected(line: str, expected: str) -> None:
    message = _error(MINIMAL + line)
    assert message.startswith("demo.yaml:15: " + expected), message


def test_required_and_exclusive_keys() -> None:
    assert "demo.yaml:11: feature_groups.spend.entity: is required" in _error(
        MINIMAL.replace("    entity: customer\n", "")
    )
    both = MINIMAL + "    sql: SELECT 1\n"
    assert "feature_groups.spend: give one of transform or sql, not both" in _error(both)
    assert "store: give exactly one of path" in _error(
        MINIMAL.replace("  path: ./store\n", "  path: ./store\n  catalog: main.fs\n")
    )
    no_project = MINIMAL.replace("project:\n  name: demo\n", "")
    assert "demo.yaml:1: project: is required" in _error(no_project)


def test_references_must_be_declared() -> None:
    assert "feature_groups.spend.entity: unknown entity 'client'" in _error(
        MINIMAL.replace("entity: customer", "entity: client")
    )
    assert "feature_groups.spend.inputs: unknown input 'events'" in _error(
        MINIMAL.replace("inputs: [txns]", "inputs: [txns, events]")
    )
    lookups = MINIMAL + "lookups:\n  - {feature_group: nope}\n"
    assert "demo.yaml:16: lookups[0].feature_group: unknown feature group 'nope'" in _error(lookups)


def test_literal_password_is_rejected() -> None:
    text = MINIMAL + "online:\n  redis:\n    url: redis://localhost:6379/0\n    password: hunter2\n"
    message = _error(text)
    assert message.startswith("demo.yaml:18: online.redis.password: never write a password")
    assert "password_env" in message
    assert "hunter2" not in message
    in_url = MINIMAL + "online:\n  redis:\n    url: redis://:hunter2@localhost:6379/0\n"
    message = _error(in_url)
    assert "demo.yaml:17: online.redis.url: the URL holds a password" in message
    assert "hunter2" not in message
    ok = parse_config(MINIMAL + "online:\n  redis: {password_env: REDIS_PASSWORD}\n")
    assert ok.online.redis is not None and ok.online.redis.password_env == "REDIS_PASSWORD"


def test_duplicate_keys_and_bad_names() -> None:
    message = _error(MINIMAL + "store:\n  path: other\n")
    assert message.startswith("demo.yaml:15: store: duplicate key (first given on line 3)")
    message = _error(MINIMAL.replace("  spend:\n", "  spend-7d:\n"))
    assert message.startswith("demo.yaml:10: feature_groups.spend-7d: invalid feature group name")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    assert _error("project: {name: x\nstore: [\n").startswith("demo.yaml:")
    assert "the file is empty" in _error("")
    with pytest.raises(ConfigurationError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "extra: 1\n")
    with pytest.raises(ConfigurationError, match=r"bad\.yaml:15: extra: unknown key"):
        load_config(bad)


def test_environment_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEKNAL_TEST_ROOT", "/data/fs")
    monkeypatch.delenv("SEEKNAL_TEST_UNSET", raising=False)
    cfg = parse_config(MINIMAL.replace("./store", "${SEEKNAL_TEST_ROOT}/store"))
    assert cfg.store.path == "/data/fs/store"
    cfg = parse_config(MINIMAL.replace("./store", "${SEEKNAL_TEST_UNSET:-/tmp}/store"))
    assert cfg.store.path == "/tmp/store"
    message = _error(MINIMAL.replace("./store", "${SEEKNAL_TEST_UNSET}/store"))
    assert "demo.yaml:4:" in message and "'SEEKNAL_TEST_UNSET' is not set" in message


def test_inputs_forms() -> None:
    text = MINIMAL.replace(
        "  txns: {path: data/txns.parquet}\n",
        "  txns: data/txns.csv\n"
        "  tbl: {table: main.sales.txns}\n"
        "  gen: {generator: 'seeknal_spark.example.data:customers', args: {seed: 7}}\n",
    )
    cfg = parse_config(text)
    assert cfg.inputs["txns"].path == "data/txns.csv"
    assert cfg.inputs["tbl"].table == "main.sales.txns"
    assert cfg.inputs["gen"].args == {"seed": 7}
    assert "give exactly one of path, table or generator" in _error(
        MINIMAL.replace("{path: data/txns.parquet}", "{path: a, table: b}")
    )
    assert "expected an import path" in _error(
        MINIMAL.replace("{path: data/txns.parquet}", "{generator: not-an-import}")
    )


def test_training_inclusive() -> None:
    training = "training: {spine: txns, timestamp_col: prediction_time}\n"
    cfg = parse_config(MINIMAL + training)
    assert cfg.training is not None and cfg.training.inclusive is True
    strict = parse_config(MINIMAL + training.replace("}", ", inclusive: false}"))
    assert strict.training is not None and strict.training.inclusive is False
    assert "training.inclusive: expected true or false, got 'no' (str)" in _error(
        MINIMAL + training.replace("}", ", inclusive: 'no'}")
    )


def test_parse_duration() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("90s") == timedelta(seconds=90)
    for bad in ("", "0d", "30", "d", "1y", "-1d", "1.5d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_project_reports_bad_imports_with_file_and_line(spark: SparkSession) -> None:
    cfg = parse_config(MINIMAL, "demo.yaml")
    with pytest.raises(ConfigurationError) as info:
        Project.from_config(cfg, spark=spark)
    message = str(info.value)
    assert message.startswith("demo.yaml:13: feature_groups.spend.transform: cannot import")
    assert "'pkg.mod:spend'" in message
    good = parse_config(
        MINIMAL.replace("pkg.mod:spend", "tests.app.test_config:passthrough")
        .replace("inputs: [txns]", "inputs: [transactions]")
        .replace("  txns: {path: data/txns.parquet}", "  transactions: {path: data/t.parquet}")
    )
    project = Project.from_config(good, spark=spark)
    assert project.spark is spark
    assert project.store.path == str(Path("store").resolve())
    assert project.feature_group("spend").inputs.keys() == {"transactions"}
    with pytest.raises(NotFoundError, match="declared: \\['spend'\\]"):
        project.feature_group("other")
