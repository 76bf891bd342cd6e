"""FeatureSchema JSON round trip, model-matrix order, and schema-level parity problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from seeknal_spark.errors import ConfigurationError, MissingColumnError, ParityError, SeeknalError
from seeknal_spark.monitoring.parity import compare_rows, schema_problems, values_equal
from seeknal_spark.training.schema import FeatureSchema, LookupSchema, SchemaFeature

SCHEMA = FeatureSchema(
    features=(
        SchemaFeature("spend_30d", "double", "customer_spend", "v1", "spend_30d"),
        SchemaFeature("txn_count_30d", "bigint", "customer_spend", "v1", "txn_count_30d"),
        SchemaFeature("segment", "string", "customer_profile", "v2", "segment"),
    ),
    lookups=(
        LookupSchema(
            "customer_spend",
            "v1",
            ("customer_id",),
            2592000.0,
            4,
            "a" * 64,
            ("spend_30d", "txn_count_30d"),
        ),
        LookupSchema("customer_profile", "v2", ("customer_id",), None, 1, "b" * 64, ("segment",)),
    ),
)


def metadata(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "table": "churn_online",
        "features": {"spend_30d": "double", "txn_count_30d": "bigint", "segment": "string"},
        "lookups": [
            {"feature_group": "customer_spend", "version": "v1", "transform_hash": "a" * 64},
            {"feature_group": "customer_profile", "version": "v2", "transform_hash": "b" * 64},
        ],
    }
    base.update(changes)
    return base


def test_json_round_trip_is_byte_stable(tmp_path: Path) -> None:
    path = tmp_path / "model" / "feature_schema.json"
    SCHEMA.save(path)
    loaded = FeatureSchema.load(path)
    assert loaded == SCHEMA
    first = path.read_bytes()
    loaded.save(path)
    assert path.read_bytes() == first
    assert loaded.feature_names == ["spend_30d", "txn_count_30d", "segment"]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no feature schema"):
        FeatureSchema.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format_version": 1}')
    with pytest.raises(ConfigurationError, match="not a seeknal feature schema"):
        FeatureSchema.load(bad)


def test_matrix_uses_schema_order_whatever_the_input_order() -> None:
    rows = [
        {"segment": "gold", "spend_30d": 1.5, "txn_count_30d": 3, "extra": 1},
        {"txn_count_30d": 0, "segment": None, "spend_30d": None},
    ]
    expected = [[1.5, 3, "gold"], [None, 0, None]]
    assert SCHEMA.matrix(rows) == expected
    frame = pd.DataFrame(rows)[["segment", "txn_count_30d", "spend_30d"]]
    assert SCHEMA.matrix(frame)[0] == [1.5, 3, "gold"]
    assert SCHEMA.matrix(rows[0]) == [expected[0]]
    with pytest.raises(MissingColumnError, match="segment"):
        SCHEMA.matrix([{"spend_30d": 1.0, "txn_count_30d": 1}])
    assert SCHEMA.select(["segment", "spend_30d"]) == ["spend_30d", "segment"]


def test_matching_metadata_has_no_problems() -> None:
    assert schema_problems(SCHEMA, metadata()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"features": {"spend_30d": "double", "txn_count_30d": "bigint"}},
            "missing feature 'segment'",
        ),
        ({"features": {**metadata()["features"], "age": "int"}}, "extra feature 'age'"),
        (
            {"features": {**metadata()["features"], "spend_30d": "float"}},
            "type mismatch for feature 'spend_30d'",
        ),
        (
            {
                "lookups": [
                    metadata()["lookups"][0],
                    {
                        "feature_group": "customer_profile",
                        "version": "v3",
                        "transform_hash": "b" * 64,
                    },
                ]
            },
            "version mismatch for feature group 'customer_profile'",
        ),
        (
            {
                "lookups": [
                    {
                        "feature_group": "customer_spend",
                        "version": "v1",
                        "transform_hash": "c" * 64,
                    },
                    metadata()["lookups"][1],
                ]
            },
            "transform hash changed for feature group 'customer_spend'",
        ),
        (
            {"lookups": metadata()["lookups"][:1]},
            "feature group 'customer_profile' (version 'v2') is not exported",
        ),
    ],
)
def test_each_parity_problem_is_named(changes: dict[str, Any], expected: str) -> None:
    problems = schema_problems(SCHEMA, metadata(**changes))
    assert len(problems) == 1
    assert expected in problems[0]


def test_value_comparison_and_report() -> None:
    nan = float("nan")
    assert values_equal(nan, nan) and values_equal(None, None) and values_equal([1.0], [1.0])
    assert not values_equal(0.1 + 0.2, 0.3) and not values_equal(None, 0)
    keys = [{"customer_id": "A"}, {"customer_id": "B"}]
    offline = [{"x": 1.0, "y": "a"}, {"x": 2.0, "y": "b"}]
    good = compare_rows("t", ["x", "y"], keys, offline, offline)
    assert good.ok and good.keys_checked == 2
    good.raise_for_mismatches()
    bad = compare_rows("t", ["x", "y"], keys, offline, [{"x": 1.0, "y": "a"}, {"x": 2.5, "y": "b"}])
    assert not bad.ok and bad.mismatches == {"x": 1, "y": 0}
    assert bad.examples["x"] == [({"customer_id": "B"}, 2.0, 2.5)]
    with pytest.raises(ParityError, match="feature 'x': 1 of 2 keys differ") as raised:
        bad.raise_for_mismatches()
    assert isinstance(raised.value, SeeknalError) and len(raised.value.problems) == 1
