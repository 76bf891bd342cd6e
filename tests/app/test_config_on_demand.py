"""On-demand features declared in the project file: parsed, every bad one named by file,
line and feature before any Spark job, and run through materialize, train, serve and the
parity gate (``Project`` and the CLI)."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from seeknal_spark.app.config import OnDemandConfig, parse_config
from seeknal_spark.app.project import Project
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.interfaces import cli
from seeknal_spark.training.schema import FeatureSchema
from tests.app import on_demand_functions as fns

FUNCTIONS = "tests.app.on_demand_functions"

PROJECT = """\
project: {name: od}
store: {path: <tmp>/store}
inputs:
  spend_rows: {path: <tmp>/spend.parquet}
  spine: {path: <tmp>/spine.parquet}
entities:
  customer: {join_keys: [customer_id]}
feature_groups:
  spend:
    entity: customer
    event_time_col: day
    inputs: [spend_rows]
    sql: "SELECT customer_id, day, avg_amount FROM {spend_rows}"
    features: {avg_amount: double}
lookups:
  - {feature_group: spend, features: [avg_amount], default: 0.0}
on_demand:
  - name: amount_vs_avg
    inputs: [amount, avg_amount]
    output_type: double
    function: "tests.app.on_demand_functions:amount_vs_avg"
    description: the amount against the average
  - {name: doubled, inputs: [amount_vs_avg], output_type: Double, mode: pandas,
     function: "tests.app.on_demand_functions:doubled"}
training: {spine: spine, timestamp_col: prediction_time, label_col: label, output: <tmp>/train}
online:
  table: od_features
  embedded: {path: <tmp>/online}
"""


def _text(tmp: Path | str = "/p", old: str = "", new: str = "") -> str:
    text = PROJECT.replace("<tmp>", str(tmp))
    if old:
        assert old in text, old
        text = text.replace(old, new)
    return text


def _without_on_demand(text: str) -> str:
    head, rest = text.split("on_demand:\n")
    return head + rest[rest.index("training:") :]


def _error(text: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_config(text, "od.yaml")
    return str(info.value)


# -- parsing --------------------------------------------------------------------------
def test_on_demand_items_are_parsed() -> None:
    cfg = parse_config(_text(), "od.yaml")
    assert cfg.on_demand == (
        OnDemandConfig(
            "amount_vs_avg",
            ("amount", "avg_amount"),
            "double",
            f"{FUNCTIONS}:amount_vs_avg",
            description="the amount against the average",
        ),
        OnDemandConfig(
            "doubled", ("amount_vs_avg",), "double", f"{FUNCTIONS}:doubled", mode="pandas"
        ),
    )
    assert cfg.on_demand[1].where == "od.yaml:23"
    assert parse_config(_without_on_demand(_text()), "od.yaml").on_demand == ()


LOOKUP = "  - {feature_group: spend, features: [avg_amount], default: 0.0}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    description: the",
            "    colour: red\n    description: the",
            "od.yaml:22: on_demand[0].colour: unknown key 'colour'; allowed keys: name, ",
        ),
        (
            "output_type: Double",
            "output_type: float",
            "od.yaml:23: on_demand[1].output_type: on-demand feature 'doubled': output_type "
            "'float' is not supported; use one of ['bigint', 'boolean', 'date', 'double'",
        ),
        (
            "mode: pandas",
            "mode: arrow",
            "od.yaml:23: on_demand[1].mode: on-demand feature 'doubled': mode 'arrow' is not "
            "one of ['scalar', 'pandas']",
        ),
        (
            'function: "tests.app.on_demand_functions:doubled"',
            "function: doubled",
            "od.yaml:24: on_demand[1].function: expected an import path "
            "'package.module:function', got 'doubled'",
        ),
        (
            "name: doubled",
            "name: amount_vs_avg",
            "od.yaml:23: on_demand[1].name: on-demand feature 'amount_vs_avg' is declared "
            "twice (first at od.yaml:18)",
        ),
        (
            "inputs: [amount_vs_avg]",
            "inputs: []",
            "od.yaml:23: on_demand[1].inputs: on-demand feature 'doubled' has no inputs",
        ),
        (
            "inputs: [amount_vs_avg]",
            "inputs: [amount_vs_avg, doubled]",
            "on_demand[1].inputs: on-demand feature 'doubled' takes itself as an input",
        ),
        (
            "inputs: [amount, avg_amount]",
            "inputs: [amount, doubled]",
            "od.yaml:19: on_demand[0].inputs: on-demand feature 'amount_vs_avg' is in a cycle "
            "of on-demand features that need each other: amount_vs_avg -> doubled -> "
            "amount_vs_avg",
        ),
        (
            "name: doubled",
            "name: avg_amount",
            "od.yaml:23: on_demand[1].name: on-demand feature 'avg_amount' has the name of "
            "feature 'avg_amount' looked up from 'spend' (lookups[0] at od.yaml:16); rename "
            "it or give the lookup a prefix",
        ),
        (  # without features in the lookup: the group's declared features
            LOOKUP,
            "  - {feature_group: spend, prefix: s_}",
            "on-demand feature 's_avg_amount' has the name of feature 'avg_amount'",
        ),
        (
            "name: doubled",
            "name: customer_id",
            "on_demand[1].name: on-demand feature 'customer_id' has the name of a join key of "
            "entity 'customer' (a spine column); rename it",
        ),
        (
            "name: doubled",
            "name: label",
            "on-demand feature 'label' has the name of the label column (training.label_col)",
        ),
    ],
)
def test_bad_on_demand_items_name_file_line_and_feature(old: str, new: str, expected: str) -> None:
    text = _text(old=old, new=new)
    if "prefix: s_" in new:
        text = text.replace("name: doubled", "name: s_avg_amount")
    assert expected in _error(text)


def test_on_demand_must_be_a_list() -> None:
    text = _without_on_demand(_text()) + "on_demand: {name: x}\n"
    assert "od.yaml:21: on_demand: expected a list of on-demand features, got a mapping" in (
        _error(text)
    )


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (
            "tests.app.no_such_module:f",
            "od.yaml:21: on_demand[0].function of on-demand feature 'amount_vs_avg': cannot "
            "import 'tests.app.no_such_module:f' (ModuleNotFoundError",
        ),
        (f"{FUNCTIONS}:missing", "on-demand feature 'amount_vs_avg': cannot import"),
        (f"{FUNCTIONS}:NOT_A_FUNCTION", "on-demand feature 'amount_vs_avg': "),
        (
            f"{FUNCTIONS}:doubled",
            "od.yaml:21: on_demand[0]: on-demand feature 'amount_vs_avg': fn cannot be called "
            "with its 2 input(s) ['amount', 'avg_amount']",
        ),
    ],
)
def test_bad_functions_fail_when_the_project_is_built_before_any_job(
    spark: SparkSession, tmp_path: Path, function: str, expected: str
) -> None:
    text = _text(tmp_path, f"{FUNCTIONS}:amount_vs_avg", function)
    cfg = parse_config(text, "od.yaml")
    context = spark.sparkContext
    context.setJobGroup("od-config", "building a project with a bad on-demand function")
    try:
        with pytest.raises(ConfigurationError) as info:
            Project.from_config(cfg, spark=spark)
        assert context.statusTracker().getJobIdsForGroup("od-config") == []
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    assert expected in str(info.value)
    if function.endswith("NOT_A_FUNCTION"):
        assert "is not a function" in str(info.value)


# -- end to end -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("od_project")
    spark.createDataFrame(
        [
            ("a", datetime(2024, 1, 2), 40.0),
            ("a", datetime(2024, 1, 10), 80.0),
            ("b", datetime(2024, 1, 5), 0.5),
        ],
        "customer_id string, day timestamp, avg_amount double",
    ).write.parquet(str(tmp / "spend.parquet"))
    spark.createDataFrame(
        [
            ("a", datetime(2024, 1, 3), 120.0, True),
            ("a", datetime(2024, 1, 12), 40.0, False),
            ("b", datetime(2024, 1, 6), 3.0, False),
            ("z", datetime(2024, 1, 8), 7.0, True),  # no features: the default 0.0
        ],
        "customer_id string, prediction_time timestamp, amount double, label boolean",
    ).write.parquet(str(tmp / "spine.parquet"))
    (tmp / "project.yaml").write_text(_text(tmp))
    return tmp


@pytest.fixture(scope="module")
def trained(spark: SparkSession, folder: Path) -> dict[str, Any]:
    """The project materialized, trained and served to the embedded sink."""
    project = Project.load(folder / "project.yaml", spark=spark)
    project.materialize(date(2024, 1, 1), date(2024, 2, 1))
    result = project.train()
    served = project.serve(as_of=datetime(2024, 1, 20), progress=False)
    assert served.features == result.features  # the on-demand features served too
    return result.to_dict()


def test_train_writes_the_on_demand_columns(
    spark: SparkSession, folder: Path, trained: dict[str, Any]
) -> None:
    project = Project.load(folder / "project.yaml", spark=spark)
    assert [f.name for f in project.on_demand()] == ["amount_vs_avg", "doubled"]
    assert project.on_demand()[0].fn is fns.amount_vs_avg
    assert trained["features"] == ["avg_amount", "amount_vs_avg", "doubled"]
    frame = spark.read.parquet(trained["output"])
    assert dict(frame.dtypes)["doubled"] == "double"
    rows = {
        (r.customer_id, r.prediction_time.day): (r.avg_amount, r.amount_vs_avg, r.doubled)
        for r in frame.collect()
    }
    assert rows == {
        ("a", 3): (40.0, 3.0, 6.0),
        ("a", 12): (80.0, 0.5, 1.0),
        ("b", 6): (0.5, 3.0, 6.0),  # the average floored at 1
        ("z", 8): (0.0, 7.0, 14.0),
    }
    schema = FeatureSchema.load(trained["schema"])
    recorded = {od.name: od for od in schema.on_demand}
    assert recorded["doubled"].mode == "pandas"
    assert recorded["amount_vs_avg"].code_hash == project.on_demand()[0].code_hash


def test_parity_passes_with_values(
    spark: SparkSession, folder: Path, trained: dict[str, Any]
) -> None:
    project = Project.load(folder / "project.yaml", spark=spark)
    result = project.parity(trained["schema"], values=True)
    assert result.problems == () and result.schema_ok
    values = result.to_dict()["values"]
    assert values["ok"] and values["mismatches"]["doubled"] == 0
    code, out, err = _parity_cli(folder / "project.yaml", trained["schema"])
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["values"]["ok"]


def test_parity_names_an_on_demand_feature_whose_function_changed(
    spark: SparkSession, folder: Path, trained: dict[str, Any]
) -> None:
    changed = folder / "changed.yaml"
    changed.write_text(_text(folder, f"{FUNCTIONS}:amount_vs_avg", f"{FUNCTIONS}:amount_vs_avg_v2"))
    project = Project.load(changed, spark=spark)
    result = project.parity(trained["schema"], values=True)
    assert not result.schema_ok
    assert result.values == "skipped: the schema check failed"
    (problem,) = result.problems
    assert problem.startswith(
        "on-demand feature 'amount_vs_avg' changed between training and the on_demand: "
        f"section of {changed}: code hash "
    )
    code, _, err = _parity_cli(changed, trained["schema"])
    assert code == 1 and "'amount_vs_avg'" in err


def test_parity_without_the_on_demand_section_names_the_features(
    spark: SparkSession, folder: Path, trained: dict[str, Any]
) -> None:
    plain = folder / "plain.yaml"
    plain.write_text(_without_on_demand(_text(folder)))
    result = Project.load(plain, spark=spark).parity(trained["schema"])
    assert [p.split(" is not")[0] for p in result.problems] == [
        "on-demand feature 'amount_vs_avg'",
        "on-demand feature 'doubled'",
    ]


def _parity_cli(config: Path, schema: str) -> tuple[int, str, str]:
    """``seeknal-spark parity --values`` in process, stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["parity", "--config", str(config), "--schema", schema, "--values"])
    return code, out.getvalue(), err.getvalue()
