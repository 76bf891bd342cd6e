"""A project's on-demand features: the ``on_demand:`` items with their functions imported.

Functions are imported by the one policy of feature-group transforms and input generators
(:func:`seeknal_spark.app.inputs.import_callable`). Spark pickles a function by reference
to its module, so that module must be importable where Spark runs Python: installed on
the executors or shipped with ``--py-files``, like any UDF.
"""

from __future__ import annotations

from collections.abc import Sequence

from seeknal_spark.app.config import OnDemandConfig
from seeknal_spark.app.inputs import import_callable
from seeknal_spark.definitions.on_demand import OnDemandFeature, order_on_demand
from seeknal_spark.errors import ConfigurationError

__all__ = ["build_on_demand"]


def build_on_demand(configs: Sequence[OnDemandConfig]) -> list[OnDemandFeature]:
    """One :class:`~seeknal_spark.definitions.on_demand.OnDemandFeature` per item, in order.

    Raises
    ------
    ConfigurationError
        Naming the file, line and feature: the function cannot be imported or called
        with the inputs, or the definitions are otherwise invalid.
    """
    features = []
    for i, od in enumerate(configs):
        path = f"on_demand[{i}]"
        fn = import_callable(
            od.function, od.at("function"), f"{path}.function of on-demand feature {od.name!r}"
        )
        try:
            features.append(
                OnDemandFeature(
                    od.name,
                    od.inputs,
                    od.output_type,
                    fn,
                    mode=od.mode,
                    description=od.description,
                )
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"{od.at('function')}: {path}: {exc}") from None
    try:
        order_on_demand(features)  # the file's checks found no cycle; this is the rule
    except ConfigurationError as exc:
        where = configs[0].where if configs else ""
        raise ConfigurationError(f"{where}: on_demand: {exc}") from None
    return features
