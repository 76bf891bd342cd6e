"""An Airflow DAG that runs a project's jobs through ``spark-submit``.

:func:`build_dag` reads a project YAML and builds, with the Apache Spark provider's
``SparkSubmitOperator``::

    materialize_<group>  (one per feature group, in parallel)
            │            jobs/materialize.py --config <cfg> --feature-group <group>
            │                 --start <data_interval_start> --end <data_interval_end>
            ▼
    export_online        jobs/export_online.py --config <cfg> --as-of <interval end>
            │                 (the project's lookups and online sink: ``Project.serve``)
            ▼
    parity_check         jobs/parity.py --config <cfg> ...      (only with with_parity=True)

A cron or preset ``schedule`` (``"@daily"``) gets a data-interval timetable, so every run
has a real ``[data_interval_start, data_interval_end)`` window (Airflow 3's default cron
timetable gives runs an empty interval).

Airflow is optional: this module imports it only inside :func:`build_dag`, and a missing
Airflow raises :class:`~seeknal_spark.errors.ConfigurationError` naming what to install.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seeknal_spark.definitions.naming import validate_name
from seeknal_spark.errors import ConfigurationError
from seeknal_spark.session import DELTA_CATALOG, DELTA_EXTENSION

if TYPE_CHECKING:
    from airflow.sdk import DAG


__all__ = ["DEFAULT_START_DATE", "DELTA_PACKAGE", "build_dag", "find_jobs_dir"]

logger = logging.getLogger(__name__)

#: Maven coordinate of the Delta release matching pyspark 4.0.x (Scala 2.13).
DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"

#: First data interval of a DAG built without ``start_date``.
DEFAULT_START_DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)

INSTALL_HINT = "pip install apache-airflow apache-airflow-providers-apache-spark"

#: The window handed to every job: the run's data interval, as ISO-8601 instants.
WINDOW_START = "{{ data_interval_start.isoformat() }}"
WINDOW_END = "{{ data_interval_end.isoformat() }}"

_DAG_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")


def find_jobs_dir(jobs_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the ``jobs/*.py`` spark-submit entry points.

    Parameters
    ----------
    jobs_dir:
        Explicit folder. Otherwise ``$SEEKNAL_JOBS_DIR``, otherwise the ``jobs/`` folder
        next to the ``seeknal_spark`` package (a checkout or an editable install).

    Returns
    -------
    Path
        An absolute path to a folder holding ``materialize.py``.

    Raises
    ------
    ConfigurationError
        When no such folder is found (a wheel install does not ship ``jobs/``).
    """
    if jobs_dir is not None:
        origin, folder = "jobs_dir=", Path(jobs_dir)
    elif os.environ.get("SEEKNAL_JOBS_DIR"):
        origin, folder = "$SEEKNAL_JOBS_DIR", Path(os.environ["SEEKNAL_JOBS_DIR"])
    else:
        origin, folder = "the checkout", Path(__file__).resolve().parent.parent / "jobs"
    if not (folder / "materialize.py").is_file():
        raise ConfigurationError(
            f"no jobs/materialize.py in {str(folder)!r} (from {origin}): pass "
            "jobs_dir='<checkout>/jobs' to build_dag or set SEEKNAL_JOBS_DIR; a wheel "
            "install does not ship the jobs, copy them from the repository's jobs/ folder"
        )
    return folder.resolve()


def _airflow_classes() -> tuple[Any, Any, Any]:
    """``(DAG, SparkSubmitOperator, CronDataIntervalTimetable)`` from the installed Airflow."""
    try:
        from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    except ImportError as exc:
        raise ConfigurationError(
            f"seeknal_spark.interfaces.airflow needs Apache Airflow and its Apache Spark provider "
            f"({exc}): {INSTALL_HINT} (or run scripts/airflow_env.sh for a separate venv)"
        ) from exc
    try:  # Airflow 3: the authoring API lives in the task SDK
        from airflow.sdk import DAG, CronDataIntervalTimetable
    except ImportError:  # Airflow 2.x
        from airflow import DAG
        from airflow.timetables.interval import CronDataIntervalTimetable
    return DAG, SparkSubmitOperator, CronDataIntervalTimetable


def build_dag(
    config_path: str | os.PathLike[str],
    *,
    dag_id: str | None = None,
    schedule: Any = "@daily",
    start_date: datetime = DEFAULT_START_DATE,
    spark_conn_id: str = "spark_default",
    application_args: Sequence[str] = (),
    export_args: Sequence[str] = (),
    with_parity: bool = False,
    jobs_dir: str | os.PathLike[str] | None = None,
    feature_groups: Sequence[str] | None = None,
    packages: str | None = DELTA_PACKAGE,
    py_files: str | None = None,
    spark_conf: Mapping[str, str] | None = None,
    env_vars: Mapping[str, str] | None = None,
    parity_args: Sequence[str] = (),
    **dag_kwargs: Any,
) -> DAG:
    """Build the DAG that materializes a project's feature groups and exports them online.

    Parameters
    ----------
    config_path:
        The project YAML (``conf/<project>.yaml``). It must be readable where the DAG is
        parsed and where the tasks run; it is passed to every job as an absolute path.
    dag_id:
        Defaults to ``seeknal_<project name>``.
    schedule:
        A cron expression or preset (given a data-interval timetable, in UTC), a
        ``timedelta``, a timetable, or ``None`` for manual runs only.
    start_date:
        First data interval (timezone-aware; naive values are taken as UTC).
    spark_conn_id:
        The Airflow connection of the Spark cluster (``spark_default``: master, deploy
        mode, and ``spark-submit`` found on the ``PATH``).
    application_args:
        Extra arguments of every materialize job (``--mode merge``, ``--force``...).
    export_args:
        Extra arguments of the export job (``--expire-keys``).
    with_parity:
        Add the parity check (``jobs/parity.py``) after the export.
    jobs_dir:
        Folder of the ``jobs/*.py`` entry points (see :func:`find_jobs_dir`).
    feature_groups:
        Only these groups (default: every group of the config, in file order).
    packages:
        ``--packages`` of every job (the Delta jars; ``None`` when the cluster has them).
    py_files:
        ``--py-files`` of every job: the built ``seeknal_spark`` wheel on clusters whose
        Python does not have the package installed.
    spark_conf:
        Extra ``--conf`` settings; the Delta extension and catalog are always set.
    env_vars:
        Environment of the ``spark-submit`` processes (e.g. ``PYSPARK_PYTHON``).
    parity_args:
        Arguments of the parity job after ``--config`` (the window is appended).
    **dag_kwargs:
        Passed to ``DAG`` (``tags``, ``default_args`` with ``retries``,
        ``max_active_runs``...); ``catchup`` defaults to ``False``.

    Returns
    -------
    DAG
        Tasks ``materialize_<group>`` >> ``export_online`` [>> ``parity_check``].

    Raises
    ------
    ConfigurationError
        Airflow or its Spark provider is missing, the config has no feature groups, a
        requested group is not in it, or the jobs folder is not found.

    Examples
    --------
    Skipped as doctests, with the reason: they need Airflow and its Spark provider, which
    the test environment installs only in ``tests/interfaces/test_airflow.py``'s own venv.

    >>> from seeknal_spark.interfaces.airflow import build_dag  # doctest: +SKIP
    >>> dag = build_dag("/opt/seeknal/conf/example.yaml",              # doctest: +SKIP
    ...                 jobs_dir="/opt/seeknal/jobs", schedule="@daily")
    """
    dag_class, operator_class, cron_timetable = _airflow_classes()

    config = Path(config_path).expanduser().resolve()
    if not config.is_file():
        raise ConfigurationError(f"project config {str(config)!r} does not exist")
    jobs = find_jobs_dir(jobs_dir)
    from seeknal_spark.app.config import load_config

    project = load_config(config)
    names = list(project.feature_groups)
    if feature_groups is not None:
        unknown = sorted(set(feature_groups) - set(names))
        if unknown:
            raise ConfigurationError(
                f"feature groups {unknown} are not in {config}; it declares {names}"
            )
        names = [n for n in names if n in set(feature_groups)]
    if not names:
        raise ConfigurationError(f"{config} declares no feature group: nothing to schedule")
    for name in names:
        validate_name(name, "feature group")

    dag_id = dag_id or f"seeknal_{project.name}"
    if not _DAG_ID.match(dag_id):
        raise ValueError(f"dag_id {dag_id!r} may only hold letters, digits, '_', '-' and '.'")
    if start_date.tzinfo is None:
        start_date = start_date.replace(tzinfo=timezone.utc)
    if isinstance(schedule, str) and schedule not in ("@once", "@continuous"):
        schedule = cron_timetable(schedule, timezone="UTC")
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("tags", ["seeknal"])
    dag_kwargs.setdefault(
        "description", f"seeknal-spark: materialize {', '.join(names)}, export online"
    )

    conf = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.session.timeZone": "UTC",
        **dict(spark_conf or {}),
    }
    common: dict[str, Any] = {
        "conn_id": spark_conn_id,
        "conf": conf,
        "packages": packages,
        "py_files": py_files,
        "env_vars": dict(env_vars) if env_vars else None,
    }
    window = ["--start", WINDOW_START, "--end", WINDOW_END]

    def submit(task_id: str, job: str, args: list[str]) -> Any:
        script = jobs / job
        if not script.is_file():
            raise ConfigurationError(f"job {str(script)!r} does not exist (task {task_id!r})")
        return operator_class(
            task_id=task_id,
            application=str(script),
            application_args=args,
            name=f"{dag_id}.{task_id}",
            **common,
        )

    cfg = ["--config", str(config)]
    # the export runs the project's own serve (its lookups and online sink), as the CLI does
    export = [*cfg, "--as-of", WINDOW_END, *export_args]
    with dag_class(dag_id=dag_id, schedule=schedule, start_date=start_date, **dag_kwargs) as dag:
        materialize = [
            submit(
                f"materialize_{name}",
                "materialize.py",
                [*cfg, "--feature-group", name, *window, *application_args],
            )
            for name in names
        ]
        exporting = submit("export_online", "export_online.py", export)
        materialize >> exporting
        if with_parity:
            parity = submit("parity_check", "parity.py", [*cfg, *parity_args, *window])
            exporting >> parity
    logger.info("built DAG %s: %d feature groups from %s", dag_id, len(names), config)
    return dag
