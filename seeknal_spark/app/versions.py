"""The default feature-group version: the latest one registered in the store.

Every interface (the CLI, ``jobs/``, the export job, Airflow) that is not given a version
resolves it here, so "no version" means the same everywhere.
"""

from __future__ import annotations

from seeknal_spark.store.feature_store import FeatureStore

__all__ = ["latest_version"]


def latest_version(store: FeatureStore, group: str) -> str:
    """The latest registered version of ``group`` in ``store``
    (:meth:`FeatureStore.latest_version`, the store's one policy).

    Raises
    ------
    NotFoundError
        When the group was never written to the store (the message names it).
    """
    return store.latest_version(group)
