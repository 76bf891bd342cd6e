"""A project's inputs and imports: YAML ``inputs`` turned into sources a feature group reads.

Paths go through the one input-format policy of :mod:`seeknal_spark.store.inputs`
(explicit format, else suffix, else what the folder holds, else Delta); tables through
the catalog; generators are ``module:function`` called with the session.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from collections.abc import Callable
from typing import Any

from seeknal_spark.app.config import InputConfig
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.store.feature_group import InputSource
from seeknal_spark.store.inputs import read_path

__all__ = ["import_callable", "input_source", "local_path"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def local_path(path: str) -> str:
    """An absolute path for a local relative path (against the working directory).

    Examples
    --------
    >>> local_path("s3://bucket/data"), local_path("/data/x")
    ('s3://bucket/data', '/data/x')
    """
    return path if _SCHEME.match(path) or os.path.isabs(path) else os.path.abspath(path)


def import_callable(target: str, where: str, what: str) -> Callable[..., Any]:
    """The function named ``module:function`` (``where``/``what`` name it in errors).

    Raises
    ------
    ConfigurationError
        When the module or attribute cannot be imported or is not callable.
    """
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"{where}: {what}: cannot import {target!r} ({type(exc).__name__}: {exc}); check "
            "the module is installed or on --py-files and the function name"
        ) from None
    if not callable(obj):
        raise ConfigurationError(f"{where}: {what}: {target!r} is not a function")
    return obj  # type: ignore[no-any-return]


def input_source(config: InputConfig) -> InputSource:
    """What a feature group reads for the YAML input ``config``: a function of the session."""
    if config.generator is not None:
        function = import_callable(
            config.generator, config.at("generator"), f"inputs.{config.name}.generator"
        )
        return functools.partial(function, **dict(config.args))
    if config.table is not None:
        table = config.table
        return lambda spark: spark.read.table(table)
    if config.path is None:  # the config guarantees one of generator, table, path
        raise ConfigurationError(f"{config.where}: inputs.{config.name}: give a path")
    return functools.partial(
        read_path,
        path=local_path(config.path),
        fmt=config.format,
        options=dict(config.options),
        what=f"input {config.name!r} ({config.where})",
    )
