"""The errors seeknal-spark raises.

Every error derives from :class:`SeeknalError`, so ``except SeeknalError`` catches
anything the library raises on purpose::

    SeeknalError
    ├── ConfigurationError          bad config file, option or name
    │   └── InvalidNameError        a group/feature/table name that is not [A-Za-z0-9_]
    ├── SchemaError                 data does not match what was declared
    │   ├── MissingColumnError      a required column is absent
    │   ├── ColumnTypeError         a column has the wrong Spark type
    │   ├── NullValueError          a key or event-time column holds nulls
    │   └── EmptyWindowError        an overwrite would empty a window that holds rows
    ├── NotFoundError               unknown feature group, version, feature or table
    ├── VersionConflictError        a version's schema/logic changed: bump the version
    ├── TransformError              a feature group's transform failed while Spark ran it
    │   └── OnDemandFeatureError    an on-demand feature's function raised or mistyped
    ├── OnlineStoreError            the online sink failed or is unreachable
    └── ParityError                 training and serving disagree

Plainly wrong arguments (a negative count, a wrong Python type) raise the built-in
``ValueError`` / ``TypeError``.
"""

from __future__ import annotations

__all__ = [
    "ColumnTypeError",
    "ConfigurationError",
    "EmptyWindowError",
    "InvalidNameError",
    "MissingColumnError",
    "NotFoundError",
    "NullValueError",
    "OnDemandFeatureError",
    "OnlineStoreError",
    "ParityError",
    "SchemaError",
    "SeeknalError",
    "TransformError",
    "VersionConflictError",
]


class SeeknalError(Exception):
    """Root of every error seeknal-spark raises on purpose."""


class ConfigurationError(SeeknalError):
    """A configuration file, option or argument combination is invalid."""


class InvalidNameError(ConfigurationError):
    """A name is not made of letters, digits and underscores."""


class SchemaError(SeeknalError):
    """Data does not have the columns or types that were declared."""


class MissingColumnError(SchemaError):
    """A required column is absent."""


class ColumnTypeError(SchemaError):
    """A column has the wrong Spark type."""


class NullValueError(SchemaError):
    """A key or event-time column holds null values."""


class EmptyWindowError(SchemaError):
    """A transform returned no rows for a window that holds rows (pass ``allow_empty=True``)."""


class NotFoundError(SeeknalError):
    """An unknown feature group, version, feature, table or key was asked for."""


class TransformError(SeeknalError):
    """A feature group's transform failed while Spark ran it (e.g. a UDF raised)."""


class OnDemandFeatureError(TransformError):
    """An on-demand feature's function raised, or returned a value of the wrong type.

    The message names the feature and the offending input row (a sample of rows for a
    pandas-form function).
    """


class VersionConflictError(SeeknalError):
    """A feature-group version already exists with a different schema or transform."""


class OnlineStoreError(SeeknalError):
    """The online store (sink) failed, is unreachable, or holds no snapshot."""


class ParityError(SeeknalError):
    """Training-time and serving-time features disagree.

    ``problems`` lists every problem found, one human-readable line each.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems or [])
