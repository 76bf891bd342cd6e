"""Typed results of the project workflows; ``to_dict()`` is each one's one-line JSON summary.

:class:`~seeknal_spark.app.backfill.MaterializeSummary` (materialize) lives with the
backfill; these are the results of ``train``, ``serve``, ``parity`` and ``drift``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from seeknal_spark.errors import ParityError

__all__ = ["DriftResult", "ParityResult", "ServeResult", "TrainResult"]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class TrainResult:
    """A training set written with its ``.manifest.json`` and ``.schema.json``."""

    project: str
    spine: str
    output: str
    format: str
    rows: int
    features: tuple[str, ...]
    manifest: str
    schema: str
    versions: Mapping[str, str] = field(default_factory=dict)
    delta_versions: Mapping[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (``command`` and ``status`` included)."""
        return {"command": "train", "status": "ok", **_plain(asdict(self))}


@dataclass(frozen=True)
class ServeResult:
    """An export of the project's lookups to an online table."""

    project: str
    table: str
    sink: str
    generation: str
    as_of: str
    keys_written: int
    lookups: Mapping[str, Mapping[str, Any]]
    features: tuple[str, ...]
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (``command`` and ``status`` included)."""
        return {"command": "serve", "status": "ok", **_plain(asdict(self))}


@dataclass(frozen=True)
class ParityResult:
    """The parity gate: schema (and optionally values) of an online table against a model.

    ``values`` is the value report's dictionary, a reason it was skipped, or ``None`` when
    values were not asked for.
    """

    schema: str
    table: str
    features: int
    schema_ok: bool
    problems: tuple[str, ...]
    values: Mapping[str, Any] | str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the online table can serve the model (no problem found)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (``status`` is ``ok`` or ``failed``)."""
        payload = {"command": "parity", **_plain(asdict(self))}
        if self.values is None:
            payload.pop("values")
        payload["status"] = "ok" if self.ok else "failed"
        return payload

    def raise_for_problems(self) -> None:
        """Raise :class:`~seeknal_spark.errors.ParityError` naming every problem, if any."""
        if self.problems:
            raise ParityError(
                f"parity failed for online table {self.table!r} and {self.schema}: "
                + " | ".join(self.problems),
                list(self.problems),
            )


@dataclass(frozen=True)
class DriftResult:
    """A drift report: per-feature metrics, alerts and where the HTML was written."""

    reference: str
    current: str
    report: str
    features: tuple[Mapping[str, Any], ...]
    skipped: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def status(self) -> str:
        """``alert`` when any feature has an alert, else ``ok``."""
        return "alert" if self.alerts else "ok"

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary."""
        return {"command": "drift", "status": self.status, **_plain(asdict(self))}
