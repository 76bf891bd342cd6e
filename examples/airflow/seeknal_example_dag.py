"""Example Airflow DAG for a seeknal-spark project: copy this file into your DAGs folder.

Every day it materializes each feature group of the project for the run's data interval
(``spark-submit jobs/materialize.py ... --start <interval start> --end <interval end>``),
then exports the online snapshot (``jobs/export_online.py``), through the Apache Spark
provider's ``SparkSubmitOperator`` and the ``spark_default`` connection.

Needs ``pip install apache-airflow apache-airflow-providers-apache-spark seeknal-spark``
(or ``bash scripts/airflow_env.sh``) and ``spark-submit`` on the workers' ``PATH``. Tell it
where the project is with environment variables of the scheduler, DAG processor and
workers (or edit the defaults below):

``SEEKNAL_CONFIG``
    The project YAML (default: ``conf/example.yaml`` of the checkout seeknal-spark is
    installed from).
``SEEKNAL_JOBS_DIR``
    The folder of the ``jobs/*.py`` entry points (default: that checkout's ``jobs/``).
``SEEKNAL_WHEEL``
    Optional: the built seeknal-spark wheel, shipped to the cluster with ``--py-files``.
``SEEKNAL_WITH_PARITY``
    ``1`` to add the parity check after the export.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import seeknal_spark
from seeknal_spark.interfaces.airflow import build_dag

CHECKOUT = Path(seeknal_spark.__file__).resolve().parent.parent

dag = build_dag(
    os.environ.get("SEEKNAL_CONFIG", str(CHECKOUT / "conf" / "example.yaml")),
    dag_id="seeknal_example",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    spark_conn_id="spark_default",
    jobs_dir=os.environ.get("SEEKNAL_JOBS_DIR") or None,
    py_files=os.environ.get("SEEKNAL_WHEEL") or None,
    with_parity=os.environ.get("SEEKNAL_WITH_PARITY", "0") == "1",
    tags=["seeknal", "example"],
    max_active_runs=1,
)
