"""Packaging for seeknal-spark."""

from pathlib import Path

from setuptools import find_packages, setup

# The engine is the platform's (a Databricks runtime, a Spark Connect client, a cluster's own
# Spark), so it is no unconditional requirement: pip would replace the platform's pyspark and
# Delta. The `local` extra brings the tested Spark 4.0.x with its matching Delta release
# (Databricks Runtime 17.x ships Spark 4.0); seeknal_spark checks the Spark version at import.
LOCAL = ["pyspark==4.0.1", "delta-spark==4.0.1"]
# What a Spark Connect client needs beside pyspark (pyspark 4.0.1's own `connect` extra).
CONNECT = [
    "grpcio>=1.67.0",
    "grpcio-status>=1.67.0",
    "googleapis-common-protos>=1.65.0",
    "zstandard>=0.23",
]

setup(
    name="seeknal-spark",
    version="0.1.0",
    description="Spark feature store: feature groups on versioned Delta tables, "
    "point-in-time training data and online serving without training-serving skew.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["seeknal_spark", "seeknal_spark.*"]),
    package_data={"seeknal_spark": ["py.typed"]},
    install_requires=[
        "pyarrow>=15",
        "pandas>=2.2,<3",
        "numpy>=1.26",
        "PyYAML>=6.0",
    ],
    extras_require={
        "local": LOCAL,
        "connect": CONNECT,
        "redis": ["redis>=5.0"],
        "ml": ["scikit-learn>=1.4"],
        "test": [  # runs on local Spark: includes the local extra
            *LOCAL,
            *CONNECT,  # the Spark Connect lane's client
            "redis>=5.0",
            "pytest>=8",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "scipy>=1.12",
            "scikit-learn>=1.4",
            "ruff>=0.6",
            "mypy>=1.10",
            "types-PyYAML",
            "pandas-stubs>=2.2,<3",
            "wheel",
        ],
    },
    entry_points={"console_scripts": ["seeknal-spark=seeknal_spark.interfaces.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "Topic :: Database"],
)
