"""Reading YAML nodes into checked values, with ``file:line`` and the key path in errors."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import yaml

from seeknal_spark.app.config.durations import parse_duration
from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ConfigurationError, InvalidNameError

__all__ = ["Reader", "Section", "describe", "kind"]

T = TypeVar("T")

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class Reader:
    """Turns YAML nodes into checked Python values, with file:line in every error."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader

    def where(self, node: yaml.Node) -> str:
        return f"{self.source}:{node.start_mark.line + 1}"

    def fail(self, node: yaml.Node, path: str, message: str) -> ConfigurationError:
        prefix = f"{self.where(node)}: {path}: " if path else f"{self.where(node)}: "
        return ConfigurationError(prefix + message)

    def value(self, node: yaml.Node) -> Any:
        value = self.loader.construct_object(node, deep=True)
        return self._interpolate_all(node, value)

    def _interpolate_all(self, node: yaml.Node, value: Any) -> Any:
        if isinstance(value, str):
            return self._interpolate(node, value)
        if isinstance(value, list):
            return [self._interpolate_all(node, v) for v in value]
        if isinstance(value, dict):
            return {k: self._interpolate_all(node, v) for k, v in value.items()}
        return value

    def _interpolate(self, node: yaml.Node, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found is None:
                if default is None:
                    raise self.fail(
                        node,
                        "",
                        f"environment variable {name!r} is not set (used as "
                        f"${{{name}}}); export it or write ${{{name}:-default}}",
                    )
                return default
            return found

        return _ENV_VAR.sub(replace, text)

    def mapping(self, node: yaml.Node, path: str) -> Section:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, f"expected a mapping (key: value), got {kind(node)}")
        return Section(self, node, path)

    def any_mapping(self, node: yaml.Node, path: str) -> dict[str, Any]:
        """A mapping of anything YAML can hold (generator arguments)."""
        self.mapping(node, path)  # checks the kind and duplicate keys
        value: dict[str, Any] = self.value(node)
        return value

    def string(self, node: yaml.Node, path: str, *, name: str | None = None) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            got = describe(self.value(node)) if isinstance(node, yaml.ScalarNode) else None
            raise self.fail(node, path, f"expected a string, got {got or kind(node)}")
        text = str(self.value(node))
        if name is not None:
            try:
                validate_name(text, name)
            except InvalidNameError as exc:
                raise self.fail(node, path, str(exc)) from None
        return text

    def text(self, node: yaml.Node, path: str) -> str:
        """A string; numbers and booleans are accepted and turned into their text."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail(node, path, f"expected a string or number, got {kind(node)}")
        value = self.value(node)
        if isinstance(value, bool):
            return "true" if value else "false"
        if not isinstance(value, (str, int, float)):
            raise self.fail(node, path, f"expected a string or number, got {describe(value)}")
        return str(value)

    def boolean(self, node: yaml.Node, path: str) -> bool:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, bool):
            raise self.fail(node, path, f"expected true or false, got {describe(value)}")
        return value

    def number(self, node: yaml.Node, path: str) -> float:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(node, path, f"expected a positive number, got {describe(value)}")
        return float(value)

    def string_list(
        self, node: yaml.Node, path: str, *, name: str | None = None
    ) -> tuple[str, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            return (self.string(node, path, name=name),)
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, path, f"expected a list of strings, got {kind(node)}")
        items = tuple(
            self.string(item, f"{path}[{i}]", name=name) for i, item in enumerate(node.value)
        )
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item in seen:
                raise self.fail(node.value[i], f"{path}[{i}]", f"{item!r} is listed twice")
            seen.add(item)
        return items

    def string_map(self, node: yaml.Node, path: str) -> dict[str, str]:
        section = self.mapping(node, path)
        return {key: self.text(value, f"{path}.{key}") for key, value in section.items()}

    def duration(self, node: yaml.Node, path: str) -> timedelta:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str):
            raise self.fail(
                node,
                path,
                f"expected a duration like '30d', '12h' or '15m', got {describe(value)}",
            )
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(node, path, str(exc)) from None

    def choice(self, node: yaml.Node, path: str, options: tuple[str, ...]) -> str:
        text = self.string(node, path)
        if text not in options:
            raise self.fail(node, path, f"expected one of {list(options)}, got {text!r}")
        return text

    def import_path(self, node: yaml.Node, path: str) -> str:
        text = self.string(node, path)
        if not _IMPORT_PATH.match(text):
            raise self.fail(
                node,
                path,
                f"expected an import path 'package.module:function', got {text!r}",
            )
        return text


class Section:
    """A YAML mapping whose keys are checked: no duplicates, no unknown keys."""

    def __init__(self, reader: Reader, node: yaml.MappingNode, path: str) -> None:
        self.reader = reader
        self.node = node
        self.path = path
        self._items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise reader.fail(key_node, path, "keys must be plain strings")
            key = str(reader.loader.construct_object(key_node))
            if key in self._items:
                first = self._items[key][0].start_mark.line + 1
                raise reader.fail(
                    key_node, self._join(key), f"duplicate key (first given on line {first})"
                )
            self._items[key] = (key_node, value_node)

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def items(self) -> list[tuple[str, yaml.Node]]:
        return [(k, v) for k, (_, v) in self._items.items()]

    def key_node(self, key: str) -> yaml.Node:
        return self._items[key][0]

    def has(self, key: str) -> bool:
        node = self._items.get(key)
        return node is not None and node[1].tag != "tag:yaml.org,2002:null"

    def check_keys(
        self, allowed: tuple[str, ...], *, hints: Mapping[str, str] | None = None
    ) -> None:
        for key, (key_node, _) in self._items.items():
            if key in allowed:
                continue
            hint = (hints or {}).get(key)
            message = hint or f"unknown key {key!r}; allowed keys: {', '.join(allowed)}"
            raise self.reader.fail(key_node, self._join(key), message)

    def get(
        self,
        key: str,
        convert: Callable[[yaml.Node, str], T],
        *,
        required: bool = False,
    ) -> T | None:
        entry = self._items.get(key)
        if entry is None or entry[1].tag == "tag:yaml.org,2002:null":
            if required:
                where = entry[1] if entry is not None else self.node
                raise self.reader.fail(where, self._join(key), "is required")
            return None
        return convert(entry[1], self._join(key))

    def require(self, key: str, convert: Callable[[yaml.Node, str], T]) -> T:
        value = self.get(key, convert, required=True)
        assert value is not None  # get(required=True) raised otherwise
        return value

    def lines(self) -> dict[str, str]:
        """``file:line`` of every key."""
        return {k: self.reader.where(key_node) for k, (key_node, _) in self._items.items()}

    def where(self, key: str | None = None) -> str:
        node = self._items[key][0] if key is not None and key in self._items else self.node
        return self.reader.where(node)


def kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a scalar"


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return f"{value!r} ({type(value).__name__})"
