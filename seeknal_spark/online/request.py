"""On-demand features at serving: computed after the lookup, from the request.

``OnlineTable.get_features(keys, request=...)`` asks for stored features and on-demand
features together. A :class:`RequestPlan` says, for one list of feature names, which
stored features to fetch (those asked for and the ones on-demand features read), which
on-demand features to compute (those asked for and the ones they read, in dependency
order) and which inputs are request fields. :meth:`RequestPlan.evaluate` then runs
:func:`seeknal_spark.definitions.on_demand.compute` - the evaluator the training set
runs inside Spark - on the fetched rows and the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seeknal_spark.definitions.on_demand import OnDemandFeature, compute
from seeknal_spark.errors import MissingColumnError, NotFoundError
from seeknal_spark.online.features import OnlineFeatures

__all__ = ["RequestPlan", "plan_request", "request_rows"]


@dataclass(frozen=True)
class RequestPlan:
    """How to answer one list of feature names that includes on-demand features."""

    names: tuple[str, ...]
    stored: tuple[str, ...]  # stored features to fetch, in this order
    on_demand: tuple[OnDemandFeature, ...]  # to compute, in dependency order
    fields: tuple[tuple[str, str], ...]  # (request field, the first feature needing it)
    types: Mapping[str, str]  # Spark types of the stored inputs

    def evaluate(
        self,
        fetched: OnlineFeatures | None,
        keys: Sequence[Mapping[str, Any]],
        requests: Sequence[Mapping[str, Any]],
        generation: str,
    ) -> OnlineFeatures:
        """The rows of :attr:`names` from the fetched stored rows and the request rows."""
        n = len(keys)
        columns: dict[str, list[Any]] = {}
        if fetched is not None:
            stored_rows = fetched.to_list()
            for j, name in enumerate(self.stored):
                columns[name] = [row[j] for row in stored_rows]
        for name, feature in self.fields:
            values = []
            for i in range(n):
                request = requests[i]
                if name in request:
                    values.append(request[name])
                elif name in keys[i]:
                    values.append(keys[i][name])
                else:
                    raise MissingColumnError(
                        f"on-demand feature {feature!r} needs request field {name!r}, which "
                        f"request row {i} lacks: pass request=[{{{name!r}: ...}}, ...] "
                        "(one dict per key)"
                    )
            columns[name] = values
        computed = compute(self.on_demand, columns, n, self.types)
        sources = [computed[name] if name in computed else columns[name] for name in self.names]
        rows = [[source[i] for source in sources] for i in range(n)]
        found = fetched.found if fetched is not None else [True] * n
        return OnlineFeatures(list(self.names), list(keys), rows, list(found), generation)


def plan_request(
    names: Sequence[str],
    attached: Mapping[str, OnDemandFeature],
    declared: Sequence[str],
    stored_types: Mapping[str, str],
) -> RequestPlan | None:
    """The plan of ``names``, or None when none of them is an on-demand feature.

    Parameters
    ----------
    names:
        The feature names asked for.
    attached:
        The on-demand features whose functions this process holds, by name.
    declared:
        The on-demand feature names recorded with the served snapshot.
    stored_types:
        The stored features of the snapshot and their Spark types.

    Raises
    ------
    NotFoundError
        An on-demand feature recorded with the snapshot whose function was not given to
        the table.
    """
    wanted = [n for n in names if n in attached or n in declared]
    if not wanted:
        return None
    missing = [n for n in wanted if n not in attached]
    if missing:
        raise NotFoundError(
            f"on-demand feature(s) {missing} are computed at request time but this table was "
            "opened without their functions: OnlineTable.open(name, sink=..., "
            "on_demand=[...]) with the definitions the model was trained with"
        )
    needed: dict[str, OnDemandFeature] = {}

    def need(name: str) -> None:
        if name in needed:
            return
        feature = attached[name]
        for dep in feature.inputs:
            if dep in attached:
                need(dep)
        needed[name] = feature  # after its dependencies: dependency order

    for name in wanted:
        need(name)
    stored = [n for n in names if n not in attached]
    fields: dict[str, str] = {}
    for feature in needed.values():
        for dep in feature.inputs:
            if dep in attached:
                continue
            if dep in stored_types:
                if dep not in stored:
                    stored.append(dep)
            else:
                fields.setdefault(dep, feature.name)
    return RequestPlan(
        names=tuple(names),
        stored=tuple(stored),
        on_demand=tuple(needed.values()),
        fields=tuple(fields.items()),
        types={n: stored_types[n] for n in stored},
    )


def request_rows(
    request: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None, n: int
) -> list[Mapping[str, Any]]:
    """One request mapping per key (``{}`` each when there is no request).

    Raises
    ------
    ValueError
        When the number of request rows differs from the number of keys.
    """
    if request is None:
        return [{}] * n
    rows = [request] if isinstance(request, Mapping) else list(request)
    if len(rows) != n:
        raise ValueError(
            f"request has {len(rows)} row(s) for {n} key(s): pass one request dict per key, "
            "in the order of the keys"
        )
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"request[{i}] is {type(row).__name__}, not a dict of fields")
    return rows
