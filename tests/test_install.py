"""Installing the package leaves the platform's Spark alone.

The engine (pyspark, Delta's Python package) belongs to the platform: a Databricks runtime, a
Spark Connect client, a cluster's own Spark. From the built wheel, in fresh virtualenvs:

- where pyspark 4.0.0 and delta-spark 4.0.0 are installed (Databricks Runtime 17.x ships Spark
  4.0.0), ``pip install <wheel>`` changes neither, and the package imports on that Spark;
- where only the Spark Connect client ``pyspark-client`` 4.0.x is installed, it brings no
  pyspark (nor py4j, nor delta-spark), and ``import seeknal_spark`` works there;
- ``pip install '<wheel>[local]'`` into an empty one is ``tests/test_wheel.py``.

The import-time check itself (a missing or unsupported pyspark names what to install) is
tested in process.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from seeknal_spark import _requirements
from tests.venvs import built_wheel, distributions, new_venv, pip_install, run, wheel_requirements

IMPORT_PROBE = (
    "import json, sys, pyspark, seeknal_spark\n"
    "print(json.dumps({'file': seeknal_spark.__file__, 'pyspark': pyspark.__version__,\n"
    "    'checked': seeknal_spark._requirements.SPARK_VERSION,\n"
    "    'engine_modules': sorted({m.split('.')[0] for m in sys.modules} & {'delta', 'py4j'})}))\n"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_wheel(tmp_path_factory)


@pytest.fixture()
def venv_python(tmp_path: Path) -> Iterator[Path]:
    """An empty virtualenv's Python; the environment (hundreds of MB) is removed afterwards."""
    yield new_venv(tmp_path / "venv")
    shutil.rmtree(tmp_path / "venv", ignore_errors=True)


def _import_in(python: Path) -> dict[str, object]:
    """Import the package in ``python``'s environment, from a folder outside the checkout."""
    out = run([str(python), "-c", IMPORT_PROBE], timeout=120, cwd=python.parent)
    found: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    assert str(found["file"]).startswith(str(python.parent.parent)), found
    return found


@pytest.mark.slow
def test_the_wheel_requires_no_engine(wheel: Path) -> None:
    requires = wheel_requirements(wheel)
    unconditional = [r for r in requires if "extra ==" not in r]
    assert not [r for r in unconditional if r.split()[0].startswith(("pyspark", "delta"))], requires
    local = sorted(r.split(";")[0].strip() for r in requires if 'extra == "local"' in r)
    assert local == ["delta-spark==4.0.1", "pyspark==4.0.1"], requires


@pytest.mark.slow
def test_installing_keeps_an_installed_pyspark_and_delta(wheel: Path, venv_python: Path) -> None:
    python = venv_python
    pip_install(python, "pyspark==4.0.0")  # a real pyspark distribution (brings py4j)
    pip_install(python, "--no-deps", "delta-spark==4.0.0")
    before = distributions(python)
    assert before["pyspark"] == "4.0.0" and before["delta-spark"] == "4.0.0", before

    pip_install(python, str(wheel))

    after = distributions(python)
    assert after["seeknal-spark"] == "0.1.0", after
    engine = ("pyspark", "py4j", "delta-spark")
    assert {d: after.get(d) for d in engine} == {d: before[d] for d in engine}
    assert "pyspark-client" not in after, after
    found = _import_in(python)
    assert found["pyspark"] == found["checked"] == "4.0.0", found


@pytest.mark.slow
def test_installing_next_to_the_spark_connect_client_brings_no_pyspark(
    wheel: Path, venv_python: Path
) -> None:
    python = venv_python
    pip_install(python, "pyspark-client==4.0.1")
    assert distributions(python)["pyspark-client"] == "4.0.1"

    pip_install(python, str(wheel))

    after = distributions(python)
    assert after["seeknal-spark"] == "0.1.0", after
    assert after["pyspark-client"] == "4.0.1", after
    assert not {"pyspark", "py4j", "delta-spark"} & set(after), sorted(after)
    missing = run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m\n"
            "try:\n    m.distribution('pyspark')\nexcept m.PackageNotFoundError:\n"
            "    print('no pyspark distribution')",
        ],
        timeout=60,
        cwd=python.parent,
    )
    assert missing.stdout.strip() == "no pyspark distribution"
    # the client provides the `pyspark` package: the package imports, with no Delta or JVM
    found = _import_in(python)
    assert found["pyspark"] == found["checked"] == "4.0.1", found
    assert found["engine_modules"] == [], found
    # a local session is what needs the local extra, and says so
    local = run(
        [
            str(python),
            "-c",
            "from pyspark.sql import SparkSession\n"
            "from seeknal_spark.errors import ConfigurationError\n"
            "from seeknal_spark.session import configure_builder\n"
            "try:\n    configure_builder(SparkSession.builder)\n"
            "except ConfigurationError as exc:\n    print(exc)",
        ],
        timeout=120,
        cwd=python.parent,
    )
    assert "pip install 'seeknal-spark[local]'" in local.stdout, local.stdout


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("4.0.0", True),
        ("4.0.1", True),
        ("4.0.0.dev0", True),
        ("4.0.1+databricks", True),
        ("4.1.0", False),
        ("4.10.0", False),
        ("3.5.3", False),
        ("40.0.0", False),
        ("unknown", False),
    ],
)
def test_supported_spark_versions(version: str, supported: bool) -> None:
    assert _requirements.is_supported_spark(version) is supported


def test_a_missing_pyspark_names_the_local_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # makes `import pyspark` fail
    with pytest.raises(ImportError) as raised:
        _requirements.check_spark()
    message = str(raised.value)
    assert "Spark 4.0.x" in message and "pip install 'seeknal-spark[local]'" in message, message


def test_an_unsupported_pyspark_names_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    old = types.ModuleType("pyspark")
    old.__version__ = "3.5.3"  # type: ignore[attr-defined]
    old.__path__ = ["/opt/spark/python/pyspark"]
    monkeypatch.setitem(sys.modules, "pyspark", old)
    with pytest.raises(ImportError) as raised:
        _requirements.check_spark()
    message = str(raised.value)
    assert "3.5.3" in message and "Spark 4.0.x" in message, message
    assert "/opt/spark/python/pyspark" in message, message
