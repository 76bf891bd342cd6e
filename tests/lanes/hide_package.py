"""An executor Python on which ``seeknal_spark`` cannot be imported (the lane's preflight).

Used as ``spark.pyspark.python`` through a wrapper script: it marks the package as absent,
then runs the module Spark asked for (``-m pyspark.daemon`` / ``-m pyspark.worker``).
Nothing happens on import (pytest collects this file for doctests).
"""

import runpy
import sys


def main() -> None:
    sys.modules["seeknal_spark"] = None  # type: ignore[assignment]  # "not installed here"
    if len(sys.argv) > 2 and sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
