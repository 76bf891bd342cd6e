"""Definitions are plain data: JSON round trip and the definition hash."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pyspark.sql.types import DoubleType, LongType

from seeknal_spark.definitions.feature import Feature, FeatureGroupDefinition


def _definition(**changes: object) -> FeatureGroupDefinition:
    values: dict[str, object] = {
        "name": "spend",
        "version": "v1",
        "entity_name": "customer",
        "join_keys": ("customer_id",),
        "event_time_col": "day",
        "features": (Feature("spend", DoubleType()), Feature("n", LongType())),
        "transform_hash": "a" * 64,
        "ttl": timedelta(days=3),
        "tags": {"team": "x"},
        "created_at": datetime(2024, 1, 1, tzinfo=timezone.utc),
    }
    values.update(changes)
    return FeatureGroupDefinition(**values)  # type: ignore[arg-type]


def test_json_round_trip() -> None:
    definition = _definition()
    assert FeatureGroupDefinition.from_json(definition.to_json()) == definition


def test_definition_hash_covers_logic_not_catalog_information() -> None:
    base = _definition()
    assert base.definition_hash() == _definition(owner="me", ttl=None).definition_hash()
    assert base.definition_hash() != _definition(transform_hash="b" * 64).definition_hash()
    assert base.definition_hash() != _definition(event_time_col="ts").definition_hash()
    assert base.differences(_definition(transform_hash="b" * 64))


def test_definitions_import_no_spark_session_machinery() -> None:
    import ast
    from pathlib import Path

    import seeknal_spark.definitions as package

    for path in Path(package.__path__[0]).glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("pyspark")
            ):
                assert node.module == "pyspark.sql.types", f"{path.name} imports {node.module}"
