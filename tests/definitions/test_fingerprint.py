"""The transform hash follows logic, not formatting, and sees the module's own helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from seeknal_spark.definitions.fingerprint import normalise_sql, transform_hash

HERE = Path(__file__).parent
BASE = (HERE / "helpers_a.py").read_text(encoding="utf-8")


def _load(tmp_path: Path, name: str, source: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "edited",
    [
        BASE.replace(
            "def transform(txns: Any) -> Any:\n",
            'def transform(txns: Any) -> Any:\n    """Now documented."""\n    # and commented\n',
        ),
        BASE.replace(
            'helper(txns).select("customer_id")',
            'helper( txns ).select(\n        "customer_id",\n    )',
        ),
        BASE.replace("    return frame.where", "    # why: only spends\n    return frame.where"),
    ],
    ids=["docstring-and-comment", "formatting", "comment-in-helper"],
)
def test_comments_docstrings_and_formatting_keep_the_hash(tmp_path: Path, edited: str) -> None:
    before = _load(tmp_path, "fp_before", BASE).transform
    after = _load(tmp_path, "fp_after", edited).transform
    assert edited != BASE
    assert transform_hash(before) == transform_hash(after)


def test_a_change_in_a_called_helper_changes_the_hash(tmp_path: Path) -> None:
    before = _load(tmp_path, "fp_h1", BASE).transform
    after = _load(tmp_path, "fp_h2", BASE.replace("amount > 0", "amount > 10")).transform
    assert transform_hash(before) != transform_hash(after)


def test_recursive_helpers_terminate(tmp_path: Path) -> None:
    source = "def a(n):\n    return b(n - 1) if n else 0\n\ndef b(n):\n    return a(n)\n"
    module = _load(tmp_path, "fp_cycle", source)
    assert len(transform_hash(module.a)) == 64


def test_lambdas_and_sql() -> None:
    assert transform_hash(lambda t: t) != transform_hash(lambda t: t.limit(1))
    assert normalise_sql("SELECT /* c */ 1 -- x\n  FROM t") == "SELECT 1 FROM t"
    assert transform_hash("SELECT 'a  b' FROM t") != transform_hash("SELECT 'a b' FROM t")
