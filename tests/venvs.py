"""Fresh virtual environments for the install tests, and the wheel they install.

The wheel is built once per test session (:func:`built_wheel`) from a copy of the checkout,
so setuptools writes no ``build/`` into the tree. Each environment is a plain
``python -m venv`` that borrows nothing from the interpreter running the tests: that
interpreter may itself be a virtualenv, whose ``--system-site-packages`` would mean the base
Python's packages, not its own. What an environment needs is installed into it by pip, from
pip's cache after the first run (pyspark is a ~430 MB source distribution: pip builds it
once and keeps the wheel).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Variables that would point a child Python or Spark at this run's packages or Spark.
_LEAKY_ENV = {
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "VIRTUAL_ENV",
    "SPARK_HOME",
    "PYSPARK_PYTHON",
    "PYSPARK_DRIVER_PYTHON",
    "PIP_REQUIRE_VIRTUALENV",
    "PIP_USER",
    "PIP_TARGET",
    "PIP_PREFIX",
}
_built: dict[str, Path] = {}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would leak its packages into a child."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", **extra)
    return env


def run(
    cmd: list[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; a non-zero exit fails the test with its output."""
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=clean_env() if env is None else env,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's wheel (``pip wheel --no-deps``), built once per test session."""
    if "wheel" not in _built:
        root = tmp_path_factory.mktemp("wheel")
        src = root / "src"
        src.mkdir()
        for name in ("setup.py", "pyproject.toml", "README.md"):
            shutil.copy(REPO / name, src / name)
        shutil.copytree(
            REPO / "seeknal_spark",
            src / "seeknal_spark",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        dist = root / "dist"
        build = ["wheel", "--no-deps", "--quiet", "-w", str(dist), str(src)]
        run([sys.executable, "-m", "pip", *build], timeout=600)
        wheels = sorted(dist.glob("seeknal_spark-*.whl"))
        assert len(wheels) == 1, wheels
        _built["wheel"] = wheels[0]
    return _built["wheel"]


def wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of the wheel's metadata."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode("utf-8")
    prefix = "Requires-Dist:"
    return [line[len(prefix) :].strip() for line in text.splitlines() if line.startswith(prefix)]


def new_venv(path: Path) -> Path:
    """Create an empty virtualenv (with pip) at ``path`` and return its Python."""
    # venv bases the new environment on the base interpreter even when sys.executable is
    # itself a virtualenv's Python; nothing is borrowed from either.
    run([sys.executable, "-m", "venv", str(path)], timeout=300)
    return path / "bin" / "python"


def pip_install(python: Path, *args: str, timeout: float = 900) -> None:
    """``pip install`` into the environment of ``python``, retrying flaky downloads."""
    patient = ["--retries", "5", "--timeout", "120"]
    run(
        [str(python), "-m", "pip", "install", "--quiet", *patient, *args],
        timeout=timeout,
        cwd=python.parent,
    )


def distributions(python: Path) -> dict[str, str]:
    """Installed distributions of the environment of ``python``: normalized name -> version."""
    code = (
        "import importlib.metadata as m, json, re\n"
        "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
        "for d in m.distributions()}))"
    )
    out = run([str(python), "-c", code], timeout=120, cwd=python.parent)
    found: dict[str, str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found
