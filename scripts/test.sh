#!/usr/bin/env bash
# Installs everything the test suite needs (Python packages, Delta's jars, redis-server)
# and runs lint, type checks and the whole test suite on real local Spark + Delta + Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

# .[test] includes the local extra (pyspark and delta-spark at the tested versions)
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
bash scripts/install_redis.sh
bash scripts/warm_delta_jars.sh

python3 -m ruff check .
python3 -m mypy
python3 -m pytest "$@"
