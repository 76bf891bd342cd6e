#!/usr/bin/env bash
# Creates, or reuses, a separate virtualenv holding Apache Airflow, its Apache Spark provider,
# PySpark + Delta and this package (editable), for the Airflow DAG and its end-to-end test.
#
#   bash scripts/airflow_env.sh [VENV_DIR]
#
# VENV_DIR defaults to $SEEKNAL_AIRFLOW_VENV, else <repo>/.venv-airflow. The last line printed
# on stdout is the venv's path; progress goes to stderr. Idempotent and safe to run twice at
# once (a lock inside the venv): a venv whose stamp matches this script is reused as it is.
#
# Pins: Airflow publishes its constraint files on GitHub, which is not reachable from every
# build machine, so the full set of versions that were installed and tested together
# (CPython 3.11, Linux x86_64, from PyPI only) is kept below. To move to a newer Airflow: build
# a venv with the new top-level versions and no constraints, run tests/interfaces/test_airflow.py, then
# replace the list with `<venv>/bin/pip freeze --exclude seeknal-spark`.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${1:-${SEEKNAL_AIRFLOW_VENV:-$REPO/.venv-airflow}}
PYTHON=${PYTHON:-python3}

AIRFLOW_VERSION=3.3.2
SPARK_PROVIDER_VERSION=6.3.4
SPARK_VERSION=4.0.1
DELTA_VERSION=4.0.1

log() { echo "airflow_env: $*" >&2; }

CONSTRAINTS=$(cat <<'EOF'
a2wsgi==1.10.10
aiosmtplib==5.1.3
aiosqlite==0.22.1
alembic==1.20.1
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
apache-airflow==3.3.2
apache-airflow-core==3.3.2
apache-airflow-providers-apache-spark==6.3.4
apache-airflow-providers-common-compat==1.23.0
apache-airflow-providers-common-io==1.11.0
apache-airflow-providers-common-sql==2.4.0
apache-airflow-providers-smtp==3.2.0
apache-airflow-providers-standard==1.21.0
apache-airflow-task-sdk==1.3.2
argcomplete==3.7.2
arrow==1.4.0
asgiref==3.13.0
attrs==26.1.0
babel==2.19.0
cachetools==8.0.2
cadwyn==7.0.0
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
click==8.5.1
colorlog==6.12.0
cron_descriptor==2.2.1
croniter==7.0.0
cryptography==50.0.2
delta-spark==4.0.1
Deprecated==1.3.1
dill==0.4.1
dnspython==2.9.2
email-validator==2.4.0
fastapi==0.136.3
fastapi-cli==0.0.34
fsspec==2026.9.0
googleapis-common-protos==1.76.0
greenback==1.3.0
greenlet==3.5.6
grpcio==1.85.3
grpcio-status==1.85.3
h11==0.16.0
httpcore==1.0.9
httptools==0.9.0
httpx==0.28.1
idna==3.20
importlib_metadata==10.2.0
isoduration==20.11.0
itsdangerous==2.2.0
Jinja2==3.1.6
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
lazy-importer==0.1.0
lazy-object-proxy==1.13.0
libcst==1.9.0
linkify-it-py==2.2.0
lockfile==0.12.2
Mako==1.4.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
methodtools==0.4.7
more-itertools==11.2.1
msgspec==0.22.0
natsort==8.4.0
numpy==2.4.6
opentelemetry-api==1.45.2
opentelemetry-exporter-http-transport==0.66b2
opentelemetry-exporter-otlp==1.45.2
opentelemetry-exporter-otlp-common==0.66b2
opentelemetry-exporter-otlp-proto-common==1.45.2
opentelemetry-exporter-otlp-proto-grpc==1.45.2
opentelemetry-exporter-otlp-proto-http==1.45.2
opentelemetry-proto==1.45.2
opentelemetry-sdk==1.45.2
opentelemetry-semantic-conventions==0.66b2
outcome==1.3.0.post0
packaging==26.4
pandas==2.3.3
pathlib_abc==0.5.2
pathspec==1.1.1
pendulum==3.3.0
pluggy==1.7.0
protobuf==7.36.2
psutil==7.2.2
py4j==0.10.9.9
pyarrow==26.0.1
pycparser==3.12
pydantic==2.14.4
pydantic-extra-types==2.11.1
pydantic-settings==2.16.3
pydantic_core==2.50.5
Pygments==2.21.0
pygtrie==2.6.2
PyJWT==2.15.1
pyspark==4.0.1
pyspark-client==4.0.1
python-daemon==3.1.2
python-dateutil==4.0.0
python-dotenv==1.2.4
python-multipart==0.0.34
python-slugify==9.2.0
pytz==2026.6
PyYAML==6.0.4
redis==8.1.0
referencing==0.37.0
requests==2.34.2
rich==15.0.0
rich-argparse==1.8.0
rich-toolkit==0.20.6
rpds-py==2026.9.1
setproctitle==1.3.8
shellingham==1.5.4
six==1.17.0
sniffio==1.3.1
SQLAlchemy==2.1.9
sqlparse==0.6.1
starlette==1.10.0
structlog==26.1.0
svcs==26.2.0
tabulate==0.10.0
tenacity==9.2.1
termcolor==3.3.0
text-unidecode==1.3
typer==0.29.2
typing-inspection==0.4.5
typing_extensions==4.16.0
tzdata==2026.6
universal_pathlib==0.3.10
urllib3==2.8.0
uuid6==2025.0.1
uvicorn==0.54.0
uvloop==0.23.0
watchfiles==1.3.0
websockets==17.4
wirerope==1.0.0
wrapt==2.5.2
zipp==4.1.2
zstandard==0.25.0
EOF
)

mkdir -p "$VENV"
VENV=$(cd "$VENV" && pwd)
exec 9>"$VENV/.seeknal-lock"
flock 9

STAMP=$( { cat "$0"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/airflow" ] && [ -x "$VENV/bin/spark-submit" ] \
  && [ "$(cat "$VENV/.seeknal-stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "reusing $VENV"
else
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    log "warning: the pins were tested on CPython 3.11; this venv has $("$VENV/bin/python" --version)"
  fi
  printf '%s\n' "$CONSTRAINTS" >"$VENV/seeknal-constraints.txt"
  PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)
  "${PIP[@]}" install --upgrade "pip==26.3" >&2
  log "installing apache-airflow==$AIRFLOW_VERSION and its Spark provider (minutes the first time)"
  # pyspark-client (a dependency of the provider) installs into the same `pyspark` package as
  # pyspark: its version must equal pyspark's, or it overwrites pyspark's files with those of
  # another release and `import pyspark` breaks.
  "${PIP[@]}" install -c "$VENV/seeknal-constraints.txt" \
    "apache-airflow==$AIRFLOW_VERSION" \
    "apache-airflow-providers-apache-spark==$SPARK_PROVIDER_VERSION" \
    "pyspark==$SPARK_VERSION" "pyspark-client==$SPARK_VERSION" "delta-spark==$DELTA_VERSION" \
    "pandas>=2.2,<3" "pyarrow>=15" "numpy>=1.26" "PyYAML>=6.0" "redis>=5.0" >&2
  "$VENV/bin/python" -m pip --disable-pip-version-check check >&2
  "$VENV/bin/python" -c "
import pyspark, delta, airflow
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
assert pyspark.__version__ == '$SPARK_VERSION', pyspark.__version__
" >&2
  echo "$STAMP" >"$VENV/.seeknal-stamp"
fi

# This package, editable, from this checkout (re-pointed when the venv served another one).
FIND_SPEC='import importlib.util as u; s = u.find_spec("seeknal_spark"); print(s.origin if s else "")'
FOUND=$(cd / && env -u PYTHONPATH "$VENV/bin/python" -c "$FIND_SPEC" 2>/dev/null) || FOUND=""
if [ "$FOUND" != "$REPO/seeknal_spark/__init__.py" ]; then
  log "installing seeknal-spark from $REPO (editable, no dependencies)"
  "$VENV/bin/python" -m pip --disable-pip-version-check --quiet install --no-deps -e "$REPO" >&2
fi
echo "$VENV"
