"""An online table: the served snapshot of a set of feature lookups, read key by key.

Typical use, in a serving process::

    table = OnlineTable.open("churn_features_online", sink=RedisSink(url))
    features = table.get_features(keys=[{"customer_id": "CUST001"}], feature_names=names)
    X = [[features[f] for f in names]]                      # one key: reads as a mapping
    rows = table.get_features(keys=[{"customer_id": "A"}, {"customer_id": "B"}])
    rows[1]["total_spend"], rows.to_list(), rows.to_pandas()  # many keys: a sequence of rows

Every call is one round trip to the sink, and every value in one result comes from the
same export (generation), even while a new export is being switched in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import types as T

from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.definitions.on_demand import OnDemandFeature, order_on_demand
from seeknal_spark.errors import MissingColumnError, NotFoundError, OnlineStoreError
from seeknal_spark.online.embedded import EmbeddedSink
from seeknal_spark.online.encoding import ValueCodec, coerce_key_value, encode_key, quote_string
from seeknal_spark.online.features import OnlineFeatures
from seeknal_spark.online.request import RequestPlan, plan_request, request_rows
from seeknal_spark.online.sink import OnlineSink

__all__ = ["OnlineFeatures", "OnlineTable"]  # OnlineFeatures lives in .features

_RETRIES = 5


@dataclass(frozen=True)
class _Lookup:
    namespace: int
    feature_group: str
    version: str
    key_columns: tuple[str, ...]
    key_types: tuple[T.DataType, ...]
    features: tuple[str, ...]
    codec: ValueCodec
    missing: list[Any]  # the row served for a key without values: defaults or None


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
            codec = ValueCodec([f.dataType for f in feats.fields])
            self.lookups.append(
                _Lookup(
                    namespace=int(lk["namespace"]),
                    feature_group=lk["feature_group"],
                    version=lk["version"],
                    key_columns=tuple(keys.names),
                    key_types=tuple(f.dataType for f in keys.fields),
                    features=tuple(feats.names),
                    codec=codec,
                    missing=[None] * len(feats.fields)
                    if not lk.get("defaults")
                    else codec.decode(lk["defaults"]),
                )
            )
            for pos, f in enumerate(feats.fields):
                self.where[f.name] = (i, pos)
                fields.append(f)
        self.schema = T.StructType(fields)
        self.names = list(self.schema.names)
        self.types = {f.name: f.dataType.simpleString() for f in fields}
        self.on_demand: list[dict[str, Any]] = list(metadata.get("on_demand") or [])
        self._queries: dict[tuple[str, ...] | None, _Query] = {}
        self.requests: dict[tuple[str, ...], RequestPlan | None] = {}

    def query(self, feature_names: Sequence[str] | None) -> _Query | list[str]:
        """The read plan of ``feature_names`` (cached), or the names this snapshot lacks."""
        cache_key = None if feature_names is None else tuple(feature_names)
        found = self._queries.get(cache_key)
        if found is not None:
            return found
        names = self.names if cache_key is None else list(cache_key)
        missing = [f for f in names if f not in self.where]
        if missing:
            return missing
        where = [self.where[f] for f in names]
        needed = sorted({i for i, _ in where})
        positions = [pos for _, pos in where]
        single = len(needed) == 1
        query = _Query(
            names=names,
            needed=needed,
            where=where,
            positions=positions,
            in_order=single and positions == list(range(len(self.lookups[needed[0]].features))),
            missing_row=[self.lookups[needed[0]].missing[p] for p in positions] if single else [],
        )
        if len(self._queries) < 256:
            self._queries[cache_key] = query
        return query


@dataclass(frozen=True)
class _Query:
    names: list[str]
    needed: list[int]  # lookup indexes to read
    where: list[tuple[int, int]]  # per name: (lookup index, position in its values)
    positions: list[int]
    in_order: bool  # one lookup, all of its features in storage order
    missing_row: list[Any]  # one lookup: values of a key it lacks


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
    on_demand:
        The :class:`~seeknal_spark.definitions.on_demand.OnDemandFeature` objects whose
        functions ``get_features`` runs after the lookup (``HistoricalFeatures.serve``
        attaches its own; a serving process passes the same definitions to :meth:`open`).

    Examples
    --------
    >>> import tempfile
    >>> from seeknal_spark.online import EmbeddedSink, Snapshot, export_snapshots
    >>> df = spark.createDataFrame([(1, 2.5, "x")], "id int, score double, tier string")
    >>> table = export_snapshots([Snapshot("scores", "v1", ("id",), df)], name="scores",
    ...                          sink=EmbeddedSink(tempfile.mkdtemp()), progress=False)
    >>> table.get_features([{"id": 1}, {"id": 2}], feature_names=["score"]).rows
    [{'score': 2.5}, {'score': None}]
    """

    def __init__(
        self,
        name: str,
        sink: OnlineSink | None = None,
        *,
        on_demand: Sequence[OnDemandFeature] = (),
    ) -> None:
        self.name = validate_name(name, "online table")
        self.sink: OnlineSink = sink if sink is not None else EmbeddedSink()
        self._plan: _Plan | None = None
        self._on_demand = {f.name: f for f in order_on_demand(on_demand)}

    @classmethod
    def open(
        cls,
        name: str,
        *,
        sink: OnlineSink | None = None,
        on_demand: Sequence[OnDemandFeature] = (),
    ) -> OnlineTable:
        """Open an existing online table (another process may have exported it).

        ``on_demand`` are the definitions of the on-demand features to compute (import
        them from the module the training code used); ``validate_parity`` names any whose
        code, inputs or type differ from the model's feature schema.

        Raises
        ------
        NotFoundError
            When the sink holds no snapshot of ``name``.
        """
        table = cls(name, sink, on_demand=on_demand)
        table._load_plan(None)
        return table

    @property
    def on_demand(self) -> list[OnDemandFeature]:
        """The on-demand features this table computes, in dependency order."""
        return list(self._on_demand.values())

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
        ``transform_hash``), ``features`` (name -> Spark type string, on-demand ones
        included), ``on_demand`` (per on-demand feature: ``name``, ``inputs``,
        ``output_type``, ``mode``, ``code_hash``) and ``manifest`` (the training manifest
        of the historical features it came from, if any).
        """
        return dict(self._load_plan(None).metadata)

    @property
    def schema(self) -> T.StructType:
        """Names and Spark types of the served features, in export order."""
        return self._load_plan(None).schema

    @property
    def feature_names(self) -> list[str]:
        """Every served feature name: the stored ones in export order, then the on-demand
        ones (recorded with the snapshot or attached)."""
        plan = self._load_plan(None)
        extra = [od["name"] for od in plan.on_demand]
        extra += [n for n in self._on_demand if n not in extra]
        return [*plan.names, *extra]

    # -- reading ----------------------------------------------------------------------
    def get_features(
        self,
        keys: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        feature_names: Sequence[str] | None = None,
        *,
        request: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
    ) -> OnlineFeatures:
        """Fetch features for entity keys, in one round trip to the sink.

        On-demand features among ``feature_names`` are computed after the lookup, by
        their functions (the scalar form row by row, the pandas form once per call), from
        the looked-up features (defaults applied) and the request.

        Parameters
        ----------
        keys:
            One dict per entity, holding every join-key column the requested features
            need (e.g. ``{"customer_id": "C1", "product_id": 7}`` when features come from
            a customer and a product feature group). A single dict is taken as one key.
        feature_names:
            Features to return, in this order (default: all stored features in export
            order, then the on-demand ones).
        request:
            One dict of request fields per key (a single dict for one key): the inputs
            of on-demand features that are not stored features (in training, spine
            columns). A field missing from a request dict is taken from the key dict.

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
        MissingColumnError
            A key dict lacks a join-key column a requested feature needs, or a request
            lacks a field an on-demand feature needs (both named).
        OnDemandFeatureError
            An on-demand function raised or returned a wrong type (the feature and the
            input row are named).
        OnlineStoreError
            The sink cannot be reached.
        """
        key_list = [keys] if isinstance(keys, Mapping) else list(keys)
        if not self._on_demand and request is None:
            return self._fetch(key_list, feature_names)
        plan = self._plan or self._load_plan(None)
        names = tuple(feature_names) if feature_names is not None else tuple(self.feature_names)
        cache_key = (plan.generation, *names)
        if cache_key not in plan.requests:
            declared = [od["name"] for od in plan.on_demand]
            found = plan_request(names, self._on_demand, declared, plan.types)
            if len(plan.requests) < 256:
                plan.requests[cache_key] = found
        else:
            found = plan.requests[cache_key]
        if found is None:
            return self._fetch(key_list, names)
        requests = request_rows(request, len(key_list))
        fetched = self._fetch(key_list, found.stored) if found.stored else None
        generation = fetched.generation if fetched is not None else plan.generation
        return found.evaluate(fetched, key_list, requests, generation)

    def _fetch(
        self, key_list: list[Mapping[str, Any]], feature_names: Sequence[str] | None
    ) -> OnlineFeatures:
        """The stored features of the keys, in one round trip."""
        plan = self._plan or self._load_plan(None)
        for _ in range(_RETRIES):
            query = plan.query(feature_names)
            if isinstance(query, list) and plan is self._plan:
                plan = self._load_plan(None)  # maybe a newer snapshot has them
                query = plan.query(feature_names)
            if isinstance(query, list):
                raise NotFoundError(
                    f"online table {self.name!r} has no feature {', '.join(map(repr, query))}; "
                    f"available: {', '.join(plan.names)}"
                )
            requests = [
                (plan.lookups[i].namespace, self._encode_keys(plan.lookups[i], key_list))
                for i in query.needed
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
            return self._assemble(plan, query, raw, key_list, generation)
        raise OnlineStoreError(
            f"online table {self.name!r} changed generation {_RETRIES} times during one read; "
            "retry when exports are less frequent"
        )

    @staticmethod
    def _encode_keys(lookup: _Lookup, key_list: list[Mapping[str, Any]]) -> list[str]:
        try:
            if len(lookup.key_columns) == 1:
                col, dtype = lookup.key_columns[0], lookup.key_types[0]
                if isinstance(dtype, T.StringType):  # the common case, kept tight
                    return [
                        "[" + quote_string(v if type(v) is str else str(v)) + "]"
                        if (v := key[col]) is not None
                        else "[null]"
                        for key in key_list
                    ]
                return [encode_key([coerce_key_value(key[col], dtype, col)]) for key in key_list]
            cols = list(zip(lookup.key_columns, lookup.key_types, strict=True))
            return [
                encode_key([coerce_key_value(key[c], t, c) for c, t in cols]) for key in key_list
            ]
        except KeyError as exc:
            raise MissingColumnError(
                f"a key lacks join-key column {exc.args[0]!r} needed by feature group "
                f"{lookup.feature_group!r}: pass every column of {list(lookup.key_columns)}"
            ) from None

    @staticmethod
    def _assemble(
        plan: _Plan,
        query: _Query,
        raw: list[list[bytes | None]],
        key_list: list[Mapping[str, Any]],
        generation: str,
    ) -> OnlineFeatures:
        names = list(query.names)
        if len(query.needed) == 1:
            values = plan.lookups[query.needed[0]].codec.decode_many(raw[0])
            found = [vals is not None for vals in values]
            missing, positions = query.missing_row, query.positions
            if query.in_order:
                rows = [missing if vals is None else vals for vals in values]
            else:
                rows = [missing if v is None else [v[p] for p in positions] for v in values]
            return OnlineFeatures(names, key_list, rows, found, generation)
        decoded = [
            (plan.lookups[i].codec.decode_many(values), plan.lookups[i].missing)
            for i, values in zip(query.needed, raw, strict=True)
        ]
        slot = {i: n for n, i in enumerate(query.needed)}
        picks = [(slot[i], pos) for i, pos in query.where]
        rows = []
        for k in range(len(key_list)):
            per_lookup: list[list[Any]] = [
                miss if (v := vals[k]) is None else v for vals, miss in decoded
            ]
            rows.append([per_lookup[j][pos] for j, pos in picks])
        found = [all(vals[k] is not None for vals, _ in decoded) for k in range(len(key_list))]
        return OnlineFeatures(names, key_list, rows, found, generation)
