"""On-demand functions named by the project files of ``test_config_on_demand.py``.

Spark's Python workers may not have the repository on their path: the module ships by
value (a user's module would be installed or on ``--py-files``, as for any UDF).
"""

from __future__ import annotations

import sys

import pandas as pd
from pyspark import cloudpickle

cloudpickle.register_pickle_by_value(sys.modules[__name__])

NOT_A_FUNCTION = 3


def amount_vs_avg(amount: float, avg_amount: float) -> float:
    """The request amount against the customer's average."""
    return amount / max(avg_amount, 1.0)


def amount_vs_avg_v2(amount: float, avg_amount: float) -> float:
    """Changed logic: the average is floored at 2."""
    return amount / max(avg_amount, 2.0)


def doubled(amount_vs_avg: pd.Series) -> pd.Series:
    """Vectorised (mode: pandas), on another on-demand feature."""
    return amount_vs_avg * 2.0
