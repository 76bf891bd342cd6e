"""Fixtures of the online-store tests: a private redis-server and one sink per backend."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, _ROOT)

from seeknal_spark.online import EmbeddedSink, OnlineSink, RedisSink  # noqa: E402
from tests.redis_server import redis_url  # noqa: E402

__all__ = ["redis_url"]

_counter = itertools.count()


@pytest.fixture(params=["redis", "embedded"])
def sink_kind(request: pytest.FixtureRequest) -> str:
    """Which backend a contract test runs on."""
    kind: str = request.param
    return kind


@pytest.fixture()
def make_sink(sink_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """Factory of fresh, isolated sinks of the current backend (own key prefix / folder)."""

    def make(orphan_after: float = 600.0) -> OnlineSink:
        n = next(_counter)
        if sink_kind == "redis":
            url = request.getfixturevalue("redis_url")
            return RedisSink(url, key_prefix=f"t{os.getpid()}_{n}", orphan_after=orphan_after)
        return EmbeddedSink(tmp_path / f"online{n}", orphan_after=orphan_after)

    yield make


@pytest.fixture()
def sink(make_sink: object) -> OnlineSink:
    """A fresh sink of the current backend."""
    return make_sink()  # type: ignore[operator,no-any-return]
