#!/usr/bin/env bash
# Makes sure Spark can resolve Delta's jars: first through Spark's own package resolution
# (Maven Central); if that fails, Maven fills ~/.m2, which Spark's resolver also reads.
set -euo pipefail
cd "$(dirname "$0")/.."
DELTA_VERSION=$(python3 -c "import importlib.metadata as m; print(m.version('delta-spark'))") || {
  echo "delta-spark is not installed: pip install -e '.[local]' (the test extra includes it)" >&2
  exit 1
}
probe() {
  python3 - <<'PY' >/dev/null 2>&1
from seeknal_spark.session import get_spark
spark = get_spark(master="local[1]")
spark.range(1).write.format("delta").mode("overwrite").save("/tmp/seeknal-delta-probe")
spark.stop()
PY
}
if probe; then
  exit 0
fi
echo "Spark could not resolve Delta from Maven Central; fetching with Maven into ~/.m2" >&2
for artifact in "io.delta:delta-spark_2.13:${DELTA_VERSION}" "io.delta:delta-storage:${DELTA_VERSION}"; do
  mvn -q dependency:get -Dartifact="${artifact}" -Dtransitive=true
done
probe
