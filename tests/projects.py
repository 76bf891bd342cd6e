"""The example project (conf/example.yaml) shrunk for tests, with every path in one folder."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "conf" / "example.yaml"


def example_project(folder: Path, *, n_customers: int, n_days: int) -> Path:
    """Write the example project with tiny data under ``folder`` and return its path."""
    text = EXAMPLE.read_text()
    for old, new in (
        ("n_customers: 500, n_days: 90", f"n_customers: {n_customers}, n_days: {n_days}"),
        ("./runs/", f"{folder}/"),
    ):
        if old not in text:
            raise AssertionError(f"conf/example.yaml no longer contains {old!r}")
        text = text.replace(old, new)
    path = folder / "project.yaml"
    path.write_text(text)
    return path
