"""What ``OnlineTable.get_features`` returns: the rows of the keys asked for."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

__all__ = ["OnlineFeatures"]


class OnlineFeatures(Sequence[dict[str, Any]]):
    """The features of the keys asked for, in the order the keys were given.

    It is a **sequence of rows**: ``len(result)`` is the number of keys, ``result[i]`` is
    the ``dict`` feature name -> value of key ``i``, iteration yields those dicts, and
    ``result.rows`` is the plain list. When exactly **one key** was asked for, it also reads
    like that key's mapping: ``result["total_spend"]``, ``"total_spend" in result``,
    ``result.get(name)``, ``result.keys()``, ``result.values()``, ``result.items()`` (so
    ``[[features[f] for f in names]]`` works as written). With several keys, a string
    index raises ``TypeError``: use ``result[i][name]``.

    A key (or a lookup of a key) that the online table does not hold, or whose value
    expired, gives ``None`` for each of its features - or the lookup's declared default,
    exactly as the point-in-time join fills a training row without a match;
    ``result.found[i]`` is ``False`` for such a key.

    Attributes
    ----------
    feature_names:
        The features of every row, in order.
    entity_keys:
        The key dicts that were asked for.
    rows:
        One ``dict`` per key.
    found:
        Per key, whether every lookup it needed had a value.
    generation:
        The online generation (snapshot) the values came from; all from one snapshot.
    """

    def __init__(
        self,
        feature_names: list[str],
        entity_keys: list[Mapping[str, Any]],
        values: list[list[Any]],
        found: list[bool],
        generation: str,
    ) -> None:
        self.feature_names = feature_names
        self.entity_keys = entity_keys
        self.found = found
        self.generation = generation
        self._values = values  # per key, in feature_names order (shared: never handed out)
        self._rows: list[dict[str, Any]] | None = None
        self._index: dict[str, int] | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One ``dict`` feature name -> value per key (built on first use)."""
        if self._rows is None:
            names = self.feature_names
            self._rows = [dict(zip(names, v, strict=True)) for v in self._values]
        return self._rows

    def _single(self) -> list[Any]:
        if len(self._values) != 1:
            raise TypeError(
                f"these features are for {len(self._values)} keys: index the row first "
                "(result[i][name]) or use result.rows / result.to_pandas()"
            )
        return self._values[0]

    def _position(self, name: str) -> int:
        self._single()
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.feature_names)}
        pos = self._index.get(name)
        if pos is None:
            raise KeyError(
                f"feature {name!r} was not asked for; asked: {', '.join(self.feature_names)}"
            )
        return pos

    @overload
    def __getitem__(self, item: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, item: slice) -> list[dict[str, Any]]: ...

    @overload
    def __getitem__(self, item: str) -> Any: ...

    def __getitem__(self, item: int | slice | str) -> Any:
        if isinstance(item, str):
            return self._values[0][self._position(item)]
        return self.rows[item]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            try:
                self._position(item)
            except KeyError:
                return False
            return True
        return item in self.rows

    def get(self, name: str, default: Any = None) -> Any:
        """The value of feature ``name`` of the single key (``default`` if not asked for)."""
        try:
            return self[name]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        """Feature names of the single key."""
        self._single()
        return list(self.feature_names)

    def values(self) -> list[Any]:
        """Feature values of the single key, in feature order."""
        return list(self._single())

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` pairs of the single key."""
        return list(zip(self.keys(), self.values(), strict=True))

    def to_list(self) -> list[list[Any]]:
        """One list of values per key, in ``feature_names`` order (a model's ``X``)."""
        return [list(v) for v in self._values]

    def to_pandas(self) -> Any:
        """A pandas DataFrame: the key columns, then one column per feature."""
        import pandas as pd

        key_cols: list[str] = list(dict.fromkeys(c for k in self.entity_keys for c in k))
        columns: dict[str, Any] = {c: [k.get(c) for k in self.entity_keys] for c in key_cols}
        for j, f in enumerate(self.feature_names):
            columns[f] = [v[j] for v in self._values]
        return pd.DataFrame({c: _series(pd, v) for c, v in columns.items()})

    def __repr__(self) -> str:
        return f"OnlineFeatures(generation={self.generation!r}, rows={self.rows!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OnlineFeatures):
            return self.rows == other.rows and self.feature_names == other.feature_names
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _series(pd: Any, values: list[Any]) -> Any:
    """A column that keeps values exact: ``None`` beside integers stays ``None`` (object)."""
    present = [v for v in values if v is not None]
    if len(present) == len(values) or all(type(v) is float for v in present):
        return pd.Series(values, dtype=object).infer_objects()
    return pd.Series(values, dtype=object)
