"""An online table: the served snapshot of a set of feature lookups, read key by key.

>>> table = OnlineTable.open("churn_features_online", sink=RedisSink(url))   # doctest: +SKIP
>>> features = table.get_features(keys=[{"customer_id": "CUST001"}], feature_names=names)
>>> X = [[features[f] for f in names]]                                         # one key
>>> rows = table.get_features(keys=[{"customer_id": "A"}, {"customer_id": "B"}])
>>> rows[1]["total_spend"], rows.to_pandas()                                   # many keys
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from pyspark.sql import types as T

from seeknal_spark.errors import NotFoundError, OnlineStoreError
from seeknal_spark.naming import validate_name
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.encoding import ValueCodec, coerce_key_value, encode_key
from seeknal_spark.online.sink import OnlineSink

__all__ = ["OnlineFeatures", "OnlineTable"]

_RETRIES = 5


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
    expired, gives ``None`` for each of its features; ``result.found[i]`` is ``False``
    for such a key.

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
        entity_keys: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        found: list[bool],
        generation: str,
    ) -> None:
        self.feature_names = feature_names
        self.entity_keys = entity_keys
        self.rows = rows
        self.found = found
        self.generation = generation

    def _single(self) -> dict[str, Any]:
        if len(self.rows) != 1:
            raise TypeError(
                f"these features are for {len(self.rows)} keys: index the row first "
                "(result[i][name]) or use result.rows / result.to_pandas()"
            )
        return self.rows[0]

    @overload
    def __getitem__(self, item: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, item: slice) -> list[dict[str, Any]]: ...

    @overload
    def __getitem__(self, item: str) -> Any: ...

    def __getitem__(self, item: int | slice | str) -> Any:
        if isinstance(item, str):
            row = self._single()
            if item not in row:
                raise KeyError(
                    f"feature {item!r} was not asked for; asked: {', '.join(self.feature_names)}"
                )
            return row[item]
        return self.rows[item]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._single()
        return item in self.rows

    def get(self, name: str, default: Any = None) -> Any:
        """The value of feature ``name`` of the single key (``default`` if not asked for)."""
        return self._single().get(name, default)

    def keys(self) -> list[str]:
        """Feature names of the single key."""
        return list(self._single().keys())

    def values(self) -> list[Any]:
        """Feature values of the single key, in feature order."""
        return list(self._single().values())

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` pairs of the single key."""
        return list(self._single().items())

    def to_list(self) -> list[list[Any]]:
        """One list of values per key, in ``feature_names`` order (a model's ``X``)."""
        return [[row[f] for f in self.feature_names] for row in self.rows]

    def to_pandas(self) -> Any:
        """A pandas DataFrame: the key columns, then one column per feature."""
        import pandas as pd

        key_cols: list[str] = list(dict.fromkeys(c for k in self.entity_keys for c in k))
        columns: dict[str, Any] = {c: [k.get(c) for k in self.entity_keys] for c in key_cols}
        for f in self.feature_names:
            columns[f] = [row[f] for row in self.rows]
        return pd.DataFrame({c: _series(pd, v) for c, v in columns.items()})

    def __repr__(self) -> str:
        return f"OnlineFeatures(generation={self.generation!r}, rows={self.rows!r})"


def _series(pd: Any, values: list[Any]) -> Any:
    """A column that keeps values exact: ``None`` beside integers stays ``None`` (object)."""
    present = [v for v in values if v is not None]
    if len(present) == len(values) or all(type(v) is float for v in present):
        return pd.Series(values, dtype=object).infer_objects()
    return pd.Series(values, dtype=object)


@dataclass(frozen=True)
class _Lookup:
    namespace: int
    feature_group: str
    version: str
    key_columns: tuple[str, ...]
    key_types: tuple[T.DataType, ...]
    features: tuple[str, ...]
    codec: ValueCodec


class _Plan:
    """What one generation's metadata says about where each feature lives."""

    def __init__(self, generation: str, metadata: dict[str, Any]) -> None:
        self.generation = generation
        self.metadata = {**metadata, "generation": generation}
        self.lookups: list[_Lookup] = []
        self.where: dict[str, tuple[int, int]] = {}
        fields: list[T.StructField] = []
        for i, lk in enumerate(metadata["lookups"]):
            keys = T.StructType.fromJson(lk["key_schema"])
            feats = T.StructType.fromJson(lk["feature_schema"])
            self.lookups.append(
                _Lookup(
                    namespace=int(lk["namespace"]),
                    feature_group=lk["feature_group"],
                    version=lk["version"],
                    key_columns=tuple(keys.names),
                    key_types=tuple(f.dataType for f in keys.fields),
                    features=tuple(feats.names),
                    codec=ValueCodec([f.dataType for f in feats.fields]),
                )
            )
            for pos, f in enumerate(feats.fields):
                self.where[f.name] = (i, pos)
                fields.append(f)
        self.schema = T.StructType(fields)


class OnlineTable:
    """A named online table in a sink, holding the latest exported snapshot.

    Create one with ``HistoricalFeatures.serve(...)`` (or
    :func:`~seeknal_spark.online.export.export_snapshots`); reopen it anywhere with
    :meth:`open`.

    Parameters
    ----------
    name:
        The table name (letters, digits, underscores).
    sink:
        Where it is stored; default: an :class:`~seeknal_spark.online.embedded.EmbeddedSink`
        at its default folder.
    """

    def __init__(self, name: str, sink: OnlineSink | None = None) -> None:
        self.name = validate_name(name, "online table")
        self.sink: OnlineSink = sink if sink is not None else EmbeddedSink()
        self._plan: _Plan | None = None

    @classmethod
    def open(cls, name: str, *, sink: OnlineSink | None = None) -> OnlineTable:
        """Open an existing online table (another process may have exported it).

        Raises
        ------
        NotFoundError
            When the sink holds no snapshot of ``name``.
        """
        table = cls(name, sink)
        table._load_plan(None)
        return table

    def __repr__(self) -> str:
        return f"OnlineTable(name={self.name!r}, sink={self.sink!r})"

    # -- schema -----------------------------------------------------------------------
    def _load_plan(self, generation: str | None) -> _Plan:
        found = self.sink.read_metadata(self.name, generation)
        if found is None and generation is not None:
            found = self.sink.read_metadata(self.name, None)  # it was replaced meanwhile
        if found is None:
            raise NotFoundError(
                f"online table {self.name!r} has no snapshot in {self.sink.describe()}: "
                f"export one first (hist.serve(name={self.name!r}, ...) or seeknal-spark serve)"
            )
        self._plan = _Plan(*found)
        return self._plan

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata of the snapshot served now (read from the sink).

        Keys: ``table``, ``generation``, ``exported_at`` and ``as_of`` (ISO-8601 UTC),
        ``lookups`` (per lookup: ``namespace``, ``feature_group``, ``version``,
        ``join_keys``, ``key_schema``/``feature_schema`` (Spark StructType JSON),
        ``ttl_seconds``, ``expire_at``, ``keys_written``, ``delta_version``,
        ``transform_hash``), ``features`` (name -> Spark type string) and ``manifest``
        (the training manifest of the historical features it came from, if any).
        """
        return dict(self._load_plan(None).metadata)

    @property
    def schema(self) -> T.StructType:
        """Names and Spark types of the served features, in export order."""
        return self._load_plan(None).schema

    @property
    def feature_names(self) -> list[str]:
        """Every served feature name, in export order."""
        return self._load_plan(None).schema.names

    # -- reading ----------------------------------------------------------------------
    def get_features(
        self,
        keys: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        feature_names: Sequence[str] | None = None,
    ) -> OnlineFeatures:
        """Fetch features for entity keys, in one round trip to the sink.

        Parameters
        ----------
        keys:
            One dict per entity, holding every join-key column the requested features
            need (e.g. ``{"customer_id": "C1", "product_id": 7}`` when features come from
            a customer and a product feature group). A single dict is taken as one key.
        feature_names:
            Features to return, in this order (default: all, in export order).

        Returns
        -------
        OnlineFeatures
            Rows in key order; for one key it also reads as a mapping name -> value.
            Keys the table does not hold give ``None`` values (``result.found[i]`` False).

        Raises
        ------
        NotFoundError
            An unknown feature name (the message lists the available ones), or no
            snapshot at all.
        ValueError
            A key dict lacks a join-key column a requested feature needs.
        OnlineStoreError
            The sink cannot be reached.
        """
        key_list = [dict(keys)] if isinstance(keys, Mapping) else [dict(k) for k in keys]
        plan = self._plan or self._load_plan(None)
        for _ in range(_RETRIES):
            names = list(feature_names) if feature_names is not None else plan.schema.names
            missing = [f for f in names if f not in plan.where]
            if missing and plan is self._plan:
                plan = self._load_plan(None)  # maybe a newer snapshot has it
                missing = [f for f in names if f not in plan.where]
            if missing:
                raise NotFoundError(
                    f"online table {self.name!r} has no feature {', '.join(map(repr, missing))}; "
                    f"available: {', '.join(plan.schema.names)}"
                )
            needed = sorted({plan.where[f][0] for f in names})
            requests = [
                (plan.lookups[i].namespace, self._encode_keys(plan.lookups[i], key_list))
                for i in needed
            ]
            generation, raw = self.sink.read(self.name, requests)
            if generation is None:
                raise OnlineStoreError(
                    f"online table {self.name!r} has no served snapshot any more in "
                    f"{self.sink.describe()}: export it again"
                )
            if generation != plan.generation:
                plan = self._load_plan(generation)
                continue
            return self._assemble(plan, names, needed, raw, key_list, generation)
        raise OnlineStoreError(
            f"online table {self.name!r} changed generation {_RETRIES} times during one read; "
            "retry when exports are less frequent"
        )

    @staticmethod
    def _encode_keys(lookup: _Lookup, key_list: list[dict[str, Any]]) -> list[str]:
        cols = list(zip(lookup.key_columns, lookup.key_types, strict=True))
        out = []
        for key in key_list:
            try:
                parts = [coerce_key_value(key[c], t, c) for c, t in cols]
            except KeyError as exc:
                raise ValueError(
                    f"key {key!r} lacks join-key column {exc.args[0]!r} needed by feature group "
                    f"{lookup.feature_group!r}: pass every column of {list(lookup.key_columns)}"
                ) from None
            out.append(encode_key(parts))
        return out

    @staticmethod
    def _assemble(
        plan: _Plan,
        names: list[str],
        needed: list[int],
        raw: list[list[bytes | None]],
        key_list: list[dict[str, Any]],
        generation: str,
    ) -> OnlineFeatures:
        decoded: dict[int, list[list[Any] | None]] = {}
        for i, values in zip(needed, raw, strict=True):
            codec = plan.lookups[i].codec
            decoded[i] = [None if v is None else codec.decode(v) for v in values]
        where = [plan.where[f] for f in names]
        rows: list[dict[str, Any]] = []
        found: list[bool] = []
        for k in range(len(key_list)):
            row = {}
            for f, (i, pos) in zip(names, where, strict=True):
                vals = decoded[i][k]
                row[f] = None if vals is None else vals[pos]
            rows.append(row)
            found.append(all(decoded[i][k] is not None for i in needed))
        return OnlineFeatures(names, key_list, rows, found, generation)
