"""Drift statistics against independent oracles (numpy, scipy) on generated data."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark.errors import ColumnTypeError, ConfigurationError, MissingColumnError
from seeknal_spark.monitoring.drift import DriftReport, DriftThresholds, compute_drift

EPS = 1e-4
BINS = 10


def _generate(spark: SparkSession, n: int, seed: int, shift: bool) -> DataFrame:
    """x: rounded normal (many ties); y: continuous with NaN; n: small ints with nulls;
    cat: categories; flag: boolean; ts: a timestamp (unsupported, skipped); id: a key."""
    u = F.rand(seed + 1)
    cats = (
        F.when(u < 0.5, "a").when(u < 0.8, "b").otherwise("c")
        if not shift
        else F.when(u < 0.2, "a").when(u < 0.5, "b").when(u < 0.7, "c").otherwise("d")
    )
    null_share = 0.25 if shift else 0.05
    return spark.range(n, numPartitions=2).select(
        F.col("id"),
        F.round(F.randn(seed) + (1.0 if shift else 0.0), 1).alias("x"),
        F.when(F.rand(seed + 2) < 0.02, F.lit(float("nan")))
        .otherwise(F.randn(seed + 3) * 10 + 50)
        .alias("y"),
        F.when(F.rand(seed + 4) < null_share, F.lit(None))
        .otherwise(F.floor(F.rand(seed + 5) * 20).cast("int"))
        .alias("n"),
        cats.alias("cat"),
        (F.rand(seed + 6) < (0.6 if shift else 0.3)).alias("flag"),
        F.timestamp_seconds(F.col("id")).alias("ts"),
    )


@pytest.fixture(scope="module")
def frames(spark: SparkSession) -> Iterator[dict[str, Any]]:
    ref = _generate(spark, 3000, 11, shift=False).cache()
    same = _generate(spark, 2000, 23, shift=False).cache()
    shifted = _generate(spark, 2000, 37, shift=True).cache()
    tagged = [
        df.withColumn("which", F.lit(name))
        for name, df in (("ref", ref), ("same", same), ("shifted", shifted))
    ]
    every = tagged[0].unionByName(tagged[1]).unionByName(tagged[2]).toPandas()  # small: oracles
    data = {name: part.reset_index(drop=True) for name, part in every.groupby("which")}
    yield {"ref": ref, "same": same, "shifted": shifted, "data": data}
    for df in (ref, same, shifted):
        df.unpersist()


@pytest.fixture(scope="module")
def same_report(frames: dict[str, Any]) -> DriftReport:
    return compute_drift(frames["ref"], frames["same"], exclude=["id"], bins=BINS)


@pytest.fixture(scope="module")
def shifted_report(frames: dict[str, Any]) -> DriftReport:
    return compute_drift(frames["ref"], frames["shifted"], exclude=["id"], bins=BINS)


def _values(column: Any) -> np.ndarray:
    """Non-missing values (null and NaN dropped) as floats."""
    arr: np.ndarray = np.asarray(column.dropna(), dtype=float)
    return np.asarray(arr[~np.isnan(arr)])


def _psi_oracle(
    ref_counts: Sequence[float] | np.ndarray, cur_counts: Sequence[float] | np.ndarray
) -> float:
    r = np.maximum(np.asarray(ref_counts, float) / np.sum(ref_counts), EPS)
    c = np.maximum(np.asarray(cur_counts, float) / np.sum(cur_counts), EPS)
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def _numpy_bins(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Right-closed, open-ended bins: index = number of edges strictly below the value."""
    idx = np.searchsorted(np.asarray(edges), values, side="left")
    return np.bincount(idx, minlength=len(edges) + 1)


@pytest.mark.parametrize("which", ["same", "shifted"])
@pytest.mark.parametrize("feature", ["x", "y", "n"])
def test_numeric_psi_and_ks_match_numpy_and_scipy(
    frames: dict[str, Any],
    same_report: DriftReport,
    shifted_report: DriftReport,
    which: str,
    feature: str,
) -> None:
    stats = pytest.importorskip("scipy.stats")
    report = same_report if which == "same" else shifted_report
    ref, cur = _values(frames["data"]["ref"][feature]), _values(frames["data"][which][feature])
    drift = report[feature]
    assert drift.kind == "numeric"
    # edges are the reference's quantiles (rank error well under one bin)
    edges = drift.bin_edges
    assert list(edges) == sorted(set(edges))
    for edge in edges:
        assert (
            np.any(np.isclose(np.mean(ref <= edge), [i / BINS for i in range(1, BINS)], atol=0.01))
            or np.sum(ref == edge) / len(ref) > 0.01
        )  # a heavy tie spans several quantiles
    ref_counts, cur_counts = _numpy_bins(ref, edges), _numpy_bins(cur, edges)
    assert drift.ref_bin_counts == tuple(ref_counts)
    assert drift.cur_bin_counts == tuple(cur_counts)
    assert drift.psi == pytest.approx(_psi_oracle(ref_counts, cur_counts), rel=1e-9, abs=1e-12)
    # PSI is the symmetric KL divergence of the smoothed bucket fractions
    r = np.maximum(ref_counts / ref_counts.sum(), EPS)
    c = np.maximum(cur_counts / cur_counts.sum(), EPS)
    assert drift.psi == pytest.approx(stats.entropy(c, r) + stats.entropy(r, c), rel=1e-9)
    assert drift.ks == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)


def test_same_distribution_is_ok(same_report: DriftReport) -> None:
    df = same_report.to_dataframe()
    assert set(df["feature"]) == {"x", "y", "n", "cat", "flag"}
    assert (df["psi"] < 0.1).all()
    assert (df.loc[df["kind"] == "numeric", "ks"] < 0.1).all()
    assert same_report.alerts == []
    assert set(df["status"]) == {"ok"}


def test_shift_raises_alerts(shifted_report: DriftReport) -> None:
    status = dict(
        zip(*(shifted_report.to_dataframe()[c] for c in ("feature", "status")), strict=True)
    )
    assert status["x"] == "alert"
    assert status["cat"] == "alert"
    assert status["n"] == "alert"  # null rate 5% -> 25%
    assert status["flag"] == "alert"
    assert status["y"] == "ok"
    alerted = {(a.feature, a.metric) for a in shifted_report.alerts}
    assert {("x", "psi"), ("x", "ks"), ("cat", "psi"), ("n", "null_rate_change")} <= alerted
    assert all(str(a).startswith(a.feature + ": ") for a in shifted_report.alerts)


def test_columns_ordered_and_unsupported_skipped(shifted_report: DriftReport) -> None:
    assert [f.feature for f in shifted_report.features] == ["x", "y", "n", "cat", "flag"]
    assert shifted_report.skipped == ("ts",)
    assert list(shifted_report.to_dataframe().columns) == [
        "feature",
        "kind",
        "psi",
        "ks",
        "ref_null_rate",
        "cur_null_rate",
        "null_rate_change",
        "status",
    ]


@pytest.mark.parametrize("feature", ["cat", "flag"])
def test_categorical_psi_matches_oracle(
    frames: dict[str, Any], shifted_report: DriftReport, feature: str
) -> None:
    ref = Counter(str(v).lower() for v in frames["data"]["ref"][feature].dropna())
    cur = Counter(str(v).lower() for v in frames["data"]["shifted"][feature].dropna())
    drift = shifted_report[feature]
    assert drift.kind == "categorical" and drift.ks is None
    labels = sorted(set(ref) | set(cur))
    assert sorted(drift.bin_labels) == labels
    got = dict(
        zip(
            drift.bin_labels,
            zip(drift.ref_bin_counts, drift.cur_bin_counts, strict=True),
            strict=True,
        )
    )
    assert got == {k: (ref[k], cur[k]) for k in labels}
    expected = _psi_oracle([ref[k] for k in labels], [cur[k] for k in labels])
    assert drift.psi == pytest.approx(expected, rel=1e-9)


def test_null_rates(frames: dict[str, Any], shifted_report: DriftReport) -> None:
    for feature in ("x", "y", "n", "cat"):
        ref, cur = frames["data"]["ref"][feature], frames["data"]["shifted"][feature]
        ref_rate = (ref.isna().sum()) / len(ref)  # isna counts None and NaN
        cur_rate = cur.isna().sum() / len(cur)
        drift = shifted_report[feature]
        assert drift.ref_null_rate == pytest.approx(ref_rate)
        assert drift.cur_null_rate == pytest.approx(cur_rate)
        assert drift.null_rate_change == pytest.approx(cur_rate - ref_rate)
        assert (drift.ref_rows, drift.cur_rows) == (3000, 2000)
    assert (shifted_report["y"].ref_null_rate or 0) > 0  # the NaNs count as missing


def test_html_and_json(shifted_report: DriftReport, tmp_path: Path) -> None:
    out = shifted_report.to_html(tmp_path / "drift.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    for f in shifted_report.features:
        assert f">{f.feature} <span" in text
    assert text.count("<svg") == len(shifted_report.features)
    assert "<script" not in text and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert 'class="alert"' in text  # alerted sections are highlighted
    loaded = json.loads(shifted_report.to_json(tmp_path / "drift.json"))
    assert [f["feature"] for f in loaded["features"]] == ["x", "y", "n", "cat", "flag"]
    assert loaded["alerts"] == [a.message for a in shifted_report.alerts]
    assert json.loads((tmp_path / "drift.json").read_text()) == loaded


@pytest.mark.usefixtures("session_zone")  # UTC, America/Los_Angeles, Asia/Kolkata
def test_small_hand_computed_case(spark: SparkSession) -> None:
    """Top-K categories with an 'other' bucket, empty buckets smoothed, custom thresholds."""
    ref = spark.sql(
        "SELECT * FROM VALUES ('a', 1D), ('a', 2D), ('a', 2D), ('b', 3D), "
        "('c', CAST(NULL AS DOUBLE)) AS t(cat, v)"
    )
    cur = spark.sql(
        "SELECT * FROM VALUES ('a', 9D), ('d', 2D), ('e', CAST(NULL AS DOUBLE)), "
        "(CAST(NULL AS STRING), CAST(NULL AS DOUBLE)) AS t(cat, v)"
    )
    report = compute_drift(
        ref,
        cur,
        max_categories=1,
        bins=2,
        thresholds=DriftThresholds(
            psi_warn=0.0, psi_alert=100.0, null_rate_warn=0.0, null_rate_alert=0.2
        ),
    )
    cat = report["cat"]
    assert cat.bin_labels == ("a", "(other)")
    assert (cat.ref_bin_counts, cat.cur_bin_counts) == ((3, 2), (1, 2))
    assert cat.psi == pytest.approx(_psi_oracle([3, 2], [1, 2]))
    assert (cat.ref_null_rate, cat.cur_null_rate) == (0.0, 0.25)
    assert cat.status == "alert"  # null rate change 0.25 >= 0.2
    v = report["v"]
    assert v.bin_edges == (2.0,)  # the reference median
    assert (v.ref_bin_counts, v.cur_bin_counts) == ((3, 1), (1, 1))
    assert v.ks == pytest.approx(0.5)  # F_ref(2) = 3/4, F_cur(2) = 1/2; at 3: 1 vs 1/2
    assert v.null_rate_change == pytest.approx(0.5 - 0.2)
    assert [a.level for a in report.warnings] == ["warn", "warn"]  # both PSIs over 0.0


def test_empty_current_side_is_no_data(spark: SparkSession) -> None:
    ref = spark.sql("SELECT * FROM VALUES (1D, 'a'), (2D, 'b') AS t(v, c)")
    report = compute_drift(ref, ref.limit(0))
    for f in report.features:
        assert f.status == "no_data" and f.psi is None and f.ks is None
        assert f.cur_rows == 0 and f.cur_null_rate is None
    assert report.alerts == []


def test_missing_and_wrong_type_features_raise(frames: dict[str, Any]) -> None:
    ref, cur = frames["ref"], frames["same"]
    with pytest.raises(MissingColumnError, match=r"'x'.*current"):
        compute_drift(ref, cur.drop("x"), features=["x", "y"])
    with pytest.raises(MissingColumnError, match=r"'nope'.*reference"):
        compute_drift(ref, cur, features=["nope"])
    with pytest.raises(ColumnTypeError, match=r"'ts'"):
        compute_drift(ref, cur, features=["ts"])
    with pytest.raises(ColumnTypeError, match=r"'x'.*double / string"):
        compute_drift(ref, cur.withColumn("x", F.col("x").cast("string")), features=["x"])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="psi_warn"):
        DriftThresholds(psi_warn=0.3, psi_alert=0.2)
    with pytest.raises(ValueError, match="ks_alert"):
        DriftThresholds(ks_alert=-1)
    assert DriftThresholds(ks_warn=math.inf, ks_alert=math.inf).ks_alert == math.inf
    assert DriftThresholds.from_mapping({"psi_alert": 0.3}).psi_alert == 0.3
    with pytest.raises(ConfigurationError, match="psi_alrt"):
        DriftThresholds.from_mapping({"psi_alrt": 0.3})


def test_bad_bins(frames: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="bins"):
        compute_drift(frames["ref"], frames["same"], bins=1)
    with pytest.raises(ValueError, match="epsilon"):
        compute_drift(frames["ref"], frames["same"], epsilon=0)
    with pytest.raises(TypeError, match="features"):
        compute_drift(frames["ref"], frames["same"], features="x")
