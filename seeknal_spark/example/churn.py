"""The example's churn model: lookups, a saved feature encoding, training and prediction.

The model sees exactly the features of the :class:`~seeknal_spark.training.schema.FeatureSchema`,
in its order, through one deterministic encoding applied in training and at serving:

1. rows are put in schema order (:meth:`FeatureSchema.matrix`), whether they come from the
   point-in-time training set or from ``OnlineTable.get_features``;
2. :class:`ModelEncoding` turns each row into numbers: numeric features as floats,
   booleans as 0/1, string features one-hot over a fixed vocabulary saved with the model
   (an unseen category is all zeros), a missing value as ``missing`` (-1: every example
   feature is >= 0, so a tree can tell it apart). Timestamp features (``last_txn_time``)
   are looked up, served and parity-checked like the others but are not model inputs:
   :meth:`ModelEncoding.for_schema` lists them in ``skipped``, saved with the encoding,
   and every row leaves them out (a request-time feature derived from them, such as the
   days since the last transaction, can be one).

Nothing is learned by the encoding, so it cannot leak the training labels, and the JSON
saved next to the model is all that serving needs besides the feature schema.
scikit-learn is imported lazily (``pip install seeknal-spark[ml]``).
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seeknal_spark.errors import ConfigurationError
from seeknal_spark.example.data import REGIONS, SEGMENTS
from seeknal_spark.example.features import (
    CUSTOMER_PROFILE_FEATURES,
    CUSTOMER_SPEND_DEFAULTS,
    CUSTOMER_SPEND_FEATURES,
    DAYS_SINCE_LAST_TXN,
)

if TYPE_CHECKING:
    import pandas as pd

    from seeknal_spark.store.feature_group import FeatureGroup
    from seeknal_spark.training.historical import FeatureLookup, HistoricalFeatures
    from seeknal_spark.training.schema import FeatureSchema

__all__ = [
    "CATEGORY_VOCABULARY",
    "LABEL_COL",
    "ModelEncoding",
    "TIMESTAMP_COL",
    "churn_features",
    "churn_lookups",
    "churn_probabilities",
    "load_model",
    "require_sklearn",
    "save_model",
    "train_churn_model",
]

#: The churn spine's label column.
LABEL_COL = "churned"

#: The churn spine's time column.
TIMESTAMP_COL = "prediction_time"

#: The fixed vocabularies of the example's string features (from the data generator).
CATEGORY_VOCABULARY: dict[str, tuple[str, ...]] = {"segment": SEGMENTS, "region": REGIONS}

_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")
_TIMES = ("timestamp", "timestamp_ntz", "date")
_ML_HINT = "scikit-learn is needed to train the example model: pip install seeknal-spark[ml]"


def churn_lookups(groups: Mapping[str, FeatureGroup], version: str = "v1") -> list[FeatureLookup]:
    """The two lookups of the churn model: spend windows (0 when empty) and profile.

    Parameters
    ----------
    groups:
        ``{"customer_spend": ..., "customer_profile": ...}`` as given by
        :func:`~seeknal_spark.example.features.example_feature_groups`.
    version:
        The feature-group version both lookups read.

    Returns
    -------
    list
        The ``customer_spend`` lookup (every feature of
        :data:`~seeknal_spark.example.features.CUSTOMER_SPEND_FEATURES`, ``last_txn_time``
        included, with :data:`~seeknal_spark.example.features.CUSTOMER_SPEND_DEFAULTS`),
        then the ``customer_profile`` lookup.
    """
    from seeknal_spark.training.historical import FeatureLookup

    return [
        FeatureLookup(
            groups["customer_spend"],
            features=list(CUSTOMER_SPEND_FEATURES),
            version=version,
            default=dict(CUSTOMER_SPEND_DEFAULTS),
        ),
        FeatureLookup(
            groups["customer_profile"], features=list(CUSTOMER_PROFILE_FEATURES), version=version
        ),
    ]


def churn_features(groups: Mapping[str, FeatureGroup], version: str = "v1") -> HistoricalFeatures:
    """The churn model's features: :func:`churn_lookups` at each ``prediction_time``,
    strictly before it (``inclusive=False``), and the request-time feature
    ``days_since_last_txn`` (:data:`~seeknal_spark.example.features.DAYS_SINCE_LAST_TXN`:
    the spine's ``prediction_time`` in training, the request's at serving).

    The label counts the transactions at ``ts >= prediction_time``, so a transaction at
    exactly the prediction time must not be in the spend windows too; not inclusive, every
    window at ``t`` holds ``t - w < ts < t``. The daily profile rows are stamped at
    midnights like the prediction times, so each spine row reads the previous midnight's
    profile (its ``tenure_days`` is one day less than the row stamped at ``t`` would say).
    Serving and :func:`~seeknal_spark.monitoring.parity.check_values` follow the same
    setting.

    Parameters
    ----------
    groups, version:
        As for :func:`churn_lookups`.
    """
    from seeknal_spark.training.historical import HistoricalFeatures

    return HistoricalFeatures(
        churn_lookups(groups, version),
        timestamp_col=TIMESTAMP_COL,
        inclusive=False,
        on_demand=[DAYS_SINCE_LAST_TXN],
    )


@dataclass(frozen=True)
class ModelEncoding:
    """A deterministic mapping from schema-ordered feature rows to model columns.

    Parameters
    ----------
    feature_names:
        The schema's feature names, in order (the order of the rows given to
        :meth:`transform`).
    types:
        Feature name -> Spark type string (``double``, ``boolean``, ``string``...).
    categories:
        For each string feature, its vocabulary (one model column per value).
    missing:
        The number a missing (null) value becomes.
    skipped:
        Features of the rows that are not model inputs: their values are left out of
        every model row (timestamps, which a model cannot use as such).
    """

    feature_names: tuple[str, ...]
    types: Mapping[str, str]
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    missing: float = -1.0
    skipped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.skipped) - set(self.feature_names))
        if unknown:
            raise ConfigurationError(
                f"skipped features {unknown} are not among the features {list(self.feature_names)}"
            )
        for name in self.model_features:
            dtype = self.types.get(name)
            if dtype == "string":
                if name not in self.categories:
                    raise ConfigurationError(
                        f"string feature {name!r} has no vocabulary: give categories="
                        f"{{{name!r}: (...)}} or leave it out of the model"
                    )
            elif dtype != "boolean" and dtype not in _NUMERIC:
                raise ConfigurationError(
                    f"feature {name!r} of type {dtype} cannot be encoded for the model: use "
                    f"numeric, boolean or string features, or leave it out with skipped=({name!r},)"
                )

    @classmethod
    def for_schema(
        cls,
        schema: FeatureSchema,
        categories: Mapping[str, Sequence[str]] | None = None,
        missing: float = -1.0,
    ) -> ModelEncoding:
        """The encoding of the features of ``schema``: every one is a model input but its
        timestamp and date features, which are listed in ``skipped`` (string features need
        a vocabulary)."""
        vocab = dict(CATEGORY_VOCABULARY if categories is None else categories)
        types = schema.types
        return cls(
            feature_names=tuple(schema.feature_names),
            types=dict(types),
            categories={n: tuple(vocab[n]) for n in schema.feature_names if n in vocab},
            missing=missing,
            skipped=tuple(n for n in schema.feature_names if types[n] in _TIMES),
        )

    @property
    def model_features(self) -> list[str]:
        """The features that are model inputs (all but ``skipped``), in order."""
        return [n for n in self.feature_names if n not in self.skipped]

    @property
    def columns(self) -> list[str]:
        """Names of the model columns, e.g. ``spend_7d``, ``segment=mass``."""
        out: list[str] = []
        for name in self.model_features:
            if self.types[name] == "string":
                out.extend(f"{name}={value}" for value in self.categories[name])
            else:
                out.append(name)
        return out

    def transform(self, rows: Sequence[Sequence[Any]]) -> list[list[float]]:
        """Model rows (the values of :attr:`columns`) from feature rows given in
        ``feature_names`` order, ``skipped`` features included."""
        out = []
        width = len(self.feature_names)
        for row in rows:
            if len(row) != width:
                raise ValueError(
                    f"a feature row has {len(row)} values, the encoding expects {width} "
                    f"({list(self.feature_names)}): build rows with schema.matrix(...)"
                )
            encoded: list[float] = []
            for name, value in zip(self.feature_names, row, strict=True):
                dtype = self.types[name]
                if name in self.skipped:
                    continue
                if dtype == "string":
                    encoded.extend(1.0 if value == c else 0.0 for c in self.categories[name])
                elif value is None or (isinstance(value, float) and math.isnan(value)):
                    encoded.append(self.missing)
                else:
                    encoded.append(float(value))
            out.append(encoded)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "types": dict(self.types),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "missing": self.missing,
            "skipped": list(self.skipped),
            "columns": self.columns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelEncoding:
        try:
            return cls(
                feature_names=tuple(data["feature_names"]),
                types=dict(data["types"]),
                categories={k: tuple(v) for k, v in data["categories"].items()},
                missing=float(data["missing"]),
                skipped=tuple(data.get("skipped", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"not a model encoding ({exc!r})") from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the encoding as stable JSON."""
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelEncoding:
        """Read an encoding written by :meth:`save`."""
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))


def require_sklearn() -> None:
    """Raise :class:`ConfigurationError` (naming the pip extra) when scikit-learn is missing."""
    _sklearn()


def _sklearn() -> Any:
    try:
        from sklearn import ensemble, metrics
    except ImportError:
        raise ConfigurationError(_ML_HINT) from None
    return ensemble, metrics


def churn_probabilities(model: Any, rows: Sequence[Sequence[float]]) -> list[float]:
    """P(churned = 1) per model row (0.0 when the model never saw a churner)."""
    classes = [int(c) for c in model.classes_]
    if 1 not in classes:
        return [0.0] * len(rows)
    column = classes.index(1)
    return [float(p[column]) for p in model.predict_proba(rows)]


def train_churn_model(
    training: pd.DataFrame,
    schema: FeatureSchema,
    encoding: ModelEncoding,
    *,
    label_col: str = LABEL_COL,
    seed: int = 42,
    n_estimators: int = 100,
    test_share: float = 0.25,
) -> tuple[Any, dict[str, Any]]:
    """Fit a RandomForestClassifier on a point-in-time training set, holding out the latest.

    The rows of the last ``test_share`` of the prediction times are held out (a time split:
    the model is scored on times after the ones it learnt from); with a single prediction
    time every row is used for both.

    Returns
    -------
    tuple
        The fitted model and metrics: ``train_rows``, ``test_rows``, ``positive_rate``,
        ``accuracy``, ``auc`` (None when the test rows hold one class only),
        ``model_columns`` and ``skipped_features`` (features that are not model inputs).
    """
    ensemble, metrics = _sklearn()
    if training.empty:
        raise ValueError("the training set is empty: nothing to learn from")
    times = sorted(training[schema.timestamp_col].unique())
    n_test = min(len(times) - 1, max(1, round(len(times) * test_share)))
    if n_test >= 1:
        cutoff = times[len(times) - n_test]
        is_test = training[schema.timestamp_col] >= cutoff
        train_part, test_part = training[~is_test], training[is_test]
    else:
        train_part = test_part = training
    x_train = encoding.transform(schema.matrix(train_part))
    y_train = [int(v) for v in train_part[label_col]]
    model = ensemble.RandomForestClassifier(
        n_estimators=n_estimators, random_state=seed, min_samples_leaf=3, n_jobs=1
    )
    model.fit(x_train, y_train)
    x_test = encoding.transform(schema.matrix(test_part))
    y_test = [int(v) for v in test_part[label_col]]
    scores = churn_probabilities(model, x_test)
    predicted = [1 if s >= 0.5 else 0 for s in scores]
    auc = float(metrics.roc_auc_score(y_test, scores)) if len(set(y_test)) == 2 else None
    report = {
        "train_rows": len(y_train),
        "test_rows": len(y_test),
        "positive_rate": round(sum(y_train + y_test) / max(1, len(y_train) + len(y_test)), 4),
        "accuracy": round(float(metrics.accuracy_score(y_test, predicted)), 4),
        "auc": None if auc is None else round(auc, 4),
        "model_columns": encoding.columns,
        "skipped_features": list(encoding.skipped),
    }
    return model, report


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Pickle the fitted model (load it back with :func:`load_model`)."""
    with open(path, "wb") as handle:
        pickle.dump(model, handle)


def load_model(path: str | os.PathLike[str]) -> Any:
    """Unpickle a model written by :func:`save_model` (only load files you trust)."""
    _sklearn()
    with open(path, "rb") as handle:
        return pickle.load(handle)
