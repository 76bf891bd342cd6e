"""A deterministic, seeded generator of synthetic customers, transactions and a churn spine.

Everything is built with Spark itself (``spark.range`` and hash expressions), so nothing
big is created on the driver and the same arguments always give the same rows, whatever
the number of partitions or cores: every random draw is ``xxhash64(seed, salt, ids...)``
mapped to ``[0, 1)``.

The hidden story behind the data (not exposed as columns):

1. each customer has an activity rate drawn from a heavy-tailed (Pareto) law, so a few
   customers make most of the transactions (Zipf-like counts);
2. some customers churn on a hidden day: their activity fades over the three weeks
   before it and stops after it; premium and very active customers churn less;
3. the churn spine samples active customers at a few prediction times and labels them
   ``churned = 1`` when they make no transaction in the ``horizon_days`` that follow, so
   features computed *before* the prediction time (spend going down) carry signal.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

__all__ = [
    "CATEGORIES",
    "REGIONS",
    "SEGMENTS",
    "churn_spine",
    "customers",
    "transactions",
    "write_example_data",
]

SEGMENTS = ("mass", "affluent", "business")
REGIONS = ("north", "south", "east", "west", "central")
CATEGORIES = ("groceries", "fuel", "dining", "travel", "electronics", "apparel", "health")

_DAY_SECONDS = 86_400
_MAX_TXNS_PER_DAY = 4
_FADE_DAYS = 21
_MASK_53 = (1 << 53) - 1


def _start_date(start: date | datetime | str) -> date:
    if isinstance(start, datetime):
        return start.astimezone(timezone.utc).date() if start.tzinfo else start.date()
    if isinstance(start, date):
        return start
    if isinstance(start, str):
        try:
            return date.fromisoformat(start)
        except ValueError:
            raise ValueError(f"start must be a date like '2024-01-01', got {start!r}") from None
    raise TypeError(f"start must be a date or 'YYYY-MM-DD', got {type(start).__name__}")


def _epoch_seconds(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _check_sizes(n_customers: int, n_days: int) -> None:
    if not isinstance(n_customers, int) or n_customers < 1:
        raise ValueError(f"n_customers must be a positive integer, got {n_customers!r}")
    if not isinstance(n_days, int) or n_days < 1:
        raise ValueError(f"n_days must be a positive integer, got {n_days!r}")


def _uniform(seed: int, salt: str, *ids: Column) -> Column:
    """A deterministic draw in ``[0, 1)`` from the seed, a salt and identifying columns."""
    hashed = F.xxhash64(F.lit(seed), F.lit(salt), *ids)
    return hashed.bitwiseAND(F.lit(_MASK_53)).cast("double") / float(1 << 53)


def _pick(values: tuple[str, ...], u: Column, weights: tuple[float, ...] | None = None) -> Column:
    """The value of ``values`` chosen by the uniform draw ``u`` with the given weights."""
    weights = weights or tuple(1.0 / len(values) for _ in values)
    total = sum(weights)
    expr = F.lit(values[-1])
    cumulative = 0.0
    branches = []
    for value, weight in zip(values[:-1], weights[:-1], strict=True):
        cumulative += weight / total
        branches.append((cumulative, value))
    for bound, value in reversed(branches):
        expr = F.when(u < bound, F.lit(value)).otherwise(expr)
    return expr


def _customer_base(
    spark: SparkSession, n_customers: int, n_days: int, start: date, seed: int
) -> DataFrame:
    """Customers with their hidden behaviour (``rate``, ``churn_day``, ``first_day``)."""
    cid = F.col("id")
    u_seg = _uniform(seed, "segment", cid)
    segment = _pick(SEGMENTS, u_seg, (0.55, 0.30, 0.15))
    premium_p = F.when(segment == "business", 0.5).when(segment == "affluent", 0.35).otherwise(0.1)
    is_premium = _uniform(seed, "premium", cid) < premium_p
    # 85% signed up in the two years before `start`, 15% during the first 60% of the period
    u_signup = _uniform(seed, "signup", cid)
    late = _uniform(seed, "late", cid) < 0.15
    signup_offset = F.when(late, F.floor(u_signup * max(1, int(n_days * 0.6)))).otherwise(
        -1 - F.floor(u_signup * 730)
    )
    start_col = F.lit(start)
    # Pareto(alpha=1.2, x_m=0.12) transactions per day, capped: a heavy-tailed activity
    rate = F.least(F.lit(3.0), 0.12 / F.pow(1.0 - _uniform(seed, "rate", cid), 1.0 / 1.2))
    churn_p = F.greatest(
        F.lit(0.05),
        0.45 - F.when(is_premium, 0.2).otherwise(0.0) - 0.1 * F.least(rate, F.lit(1.5)),
    )
    churns = _uniform(seed, "churn", cid) < churn_p
    churn_day = F.when(
        churns, F.lit(20) + F.floor(_uniform(seed, "churn_day", cid) * (n_days + 10))
    ).otherwise(F.lit(1 << 30))
    return spark.range(0, n_customers, 1, numPartitions=2).select(
        cid,
        F.format_string("CUST%05d", cid + 1).alias("customer_id"),
        F.date_add(start_col, signup_offset.cast("int")).alias("signup_date"),
        segment.alias("segment"),
        _pick(REGIONS, _uniform(seed, "region", cid)).alias("region"),
        is_premium.alias("is_premium"),
        rate.alias("rate"),
        churn_day.cast("long").alias("churn_day"),
        F.greatest(F.lit(0), signup_offset).cast("long").alias("first_day"),
    )


def customers(
    spark: SparkSession,
    *,
    n_customers: int = 500,
    n_days: int = 90,
    start: date | datetime | str = "2024-01-01",
    seed: int = 42,
) -> DataFrame:
    """Customer profiles.

    Parameters
    ----------
    spark:
        The session to build the DataFrame with.
    n_customers, n_days, start, seed:
        Size of the population, length of the period (days from ``start``) and the seed;
        the same values always give the same rows.

    Returns
    -------
    DataFrame
        ``customer_id`` (``"CUST00001"``...), ``signup_date`` (date), ``segment``,
        ``region``, ``is_premium`` (boolean).
    """
    _check_sizes(n_customers, n_days)
    base = _customer_base(spark, n_customers, n_days, _start_date(start), seed)
    return base.select("customer_id", "signup_date", "segment", "region", "is_premium")


def transactions(
    spark: SparkSession,
    *,
    n_customers: int = 500,
    n_days: int = 90,
    start: date | datetime | str = "2024-01-01",
    seed: int = 42,
) -> DataFrame:
    """Card transactions of the customers of :func:`customers` (same arguments).

    Returns
    -------
    DataFrame
        ``txn_id`` (unique), ``customer_id``, ``ts`` (timestamp, UTC, inside
        ``[start, start + n_days)``), ``amount`` (double, two decimals), ``category``.
    """
    _check_sizes(n_customers, n_days)
    first = _start_date(start)
    base = _customer_base(spark, n_customers, n_days, first, seed)
    day = F.col("day")
    slot = F.col("slot")
    cid = F.col("id")
    weekend = F.dayofweek(F.date_add(F.lit(first), day.cast("int"))).isin(1, 7)
    to_churn = F.col("churn_day") - day
    fade = F.when(to_churn <= _FADE_DAYS, F.greatest(F.lit(0.1), to_churn / _FADE_DAYS)).otherwise(
        1.0
    )
    daily_rate = F.col("rate") * F.when(weekend, 1.3).otherwise(1.0) * fade
    keep = _uniform(seed, "txn", cid, day, slot) < daily_rate / _MAX_TXNS_PER_DAY
    # approximately normal draw (sum of three uniforms), for log-normal amounts
    z = (
        _uniform(seed, "z1", cid, day, slot)
        + _uniform(seed, "z2", cid, day, slot)
        + _uniform(seed, "z3", cid, day, slot)
        - 1.5
    ) * 2.0
    typical = (
        F.when(F.col("segment") == "business", 80.0)
        .when(F.col("segment") == "affluent", 55.0)
        .otherwise(25.0)
    )
    start_seconds = _epoch_seconds(first)
    seconds = (
        F.lit(start_seconds)
        + day * _DAY_SECONDS
        + F.floor(_uniform(seed, "time", cid, day, slot) * _DAY_SECONDS)
    )
    days = F.sequence(F.lit(0), F.lit(n_days - 1)).cast("array<bigint>")
    return (
        base.withColumn("day", F.explode(days))
        .where((day >= F.col("first_day")) & (day < F.col("churn_day")))
        .withColumn("slot", F.explode(F.sequence(F.lit(0), F.lit(_MAX_TXNS_PER_DAY - 1))))
        .where(keep)
        .select(
            F.format_string("TXN-%05d-%04d-%d", cid + 1, day, slot).alias("txn_id"),
            "customer_id",
            F.timestamp_seconds(seconds).alias("ts"),
            F.round(F.greatest(F.lit(1.0), typical * F.exp(0.7 * z)), 2).alias("amount"),
            _pick(CATEGORIES, _uniform(seed, "category", cid, day, slot)).alias("category"),
        )
    )


def churn_spine(
    spark: SparkSession,
    *,
    n_customers: int = 500,
    n_days: int = 90,
    start: date | datetime | str = "2024-01-01",
    seed: int = 42,
    horizon_days: int | None = None,
    warmup_days: int | None = None,
    every_days: int | None = None,
) -> DataFrame:
    """A labelled spine: which active customers churned after each prediction time.

    Prediction times are midnights (UTC) every ``every_days`` from ``start +
    warmup_days`` while ``prediction_time + horizon_days`` still lies in the period. A
    customer is in the spine at a prediction time when they made at least one
    transaction in the ``warmup_days`` before it; ``churned`` is 1 when they make none in
    ``[prediction_time, prediction_time + horizon_days)`` — behaviour *after* the
    prediction time, so features known before it can predict it without leakage.

    By default ``horizon_days`` and ``warmup_days`` are 30 and ``every_days`` 14, shrunk
    to a third (a sixth) of ``n_days`` for short periods.

    Returns
    -------
    DataFrame
        ``customer_id``, ``prediction_time`` (timestamp), ``churned`` (int 0/1).
    """
    _check_sizes(n_customers, n_days)
    horizon_days = min(30, max(1, n_days // 3)) if horizon_days is None else horizon_days
    warmup_days = min(30, max(1, n_days // 3)) if warmup_days is None else warmup_days
    every_days = min(14, max(1, n_days // 6)) if every_days is None else every_days
    for name, value in (
        ("horizon_days", horizon_days),
        ("warmup_days", warmup_days),
        ("every_days", every_days),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    first = _start_date(start)
    days = list(range(warmup_days, n_days - horizon_days + 1, every_days))
    if not days:
        raise ValueError(
            f"no prediction time fits: n_days={n_days} must be at least "
            f"warmup_days + horizon_days = {warmup_days + horizon_days}"
        )
    times = spark.range(len(days), numPartitions=1).select(
        F.timestamp_seconds(
            F.lit(_epoch_seconds(first))
            + (F.lit(days[0]) + F.col("id") * every_days) * _DAY_SECONDS
        ).alias("prediction_time")
    )
    txns = transactions(spark, n_customers=n_customers, n_days=n_days, start=first, seed=seed)
    pt_s = F.unix_seconds(F.col("prediction_time"))
    ts_s = F.unix_seconds(F.col("ts"))
    joined = txns.join(
        times,
        (ts_s >= pt_s - warmup_days * _DAY_SECONDS) & (ts_s < pt_s + horizon_days * _DAY_SECONDS),
    )
    counts = joined.groupBy("customer_id", "prediction_time").agg(
        F.sum(F.when(ts_s < pt_s, 1).otherwise(0)).alias("n_before"),
        F.sum(F.when(ts_s >= pt_s, 1).otherwise(0)).alias("n_after"),
    )
    return counts.where(F.col("n_before") > 0).select(
        "customer_id",
        "prediction_time",
        F.when(F.col("n_after") == 0, 1).otherwise(0).cast("int").alias("churned"),
    )


def write_example_data(
    spark: SparkSession,
    data_dir: str,
    *,
    n_customers: int = 500,
    n_days: int = 90,
    start: date | datetime | str = "2024-01-01",
    seed: int = 42,
) -> dict[str, str]:
    """Write customers, transactions and the churn spine as Parquet under ``data_dir``.

    Returns
    -------
    dict
        ``{"customers": path, "transactions": path, "churn_spine": path}``; each path ends
        in ``.parquet`` so a feature group input given the path reads it as Parquet.
    """
    frames = {
        "customers": customers(
            spark, n_customers=n_customers, n_days=n_days, start=start, seed=seed
        ),
        "transactions": transactions(
            spark, n_customers=n_customers, n_days=n_days, start=start, seed=seed
        ),
        "churn_spine": churn_spine(
            spark, n_customers=n_customers, n_days=n_days, start=start, seed=seed
        ),
    }
    paths = {}
    for name, frame in frames.items():
        path = f"{data_dir.rstrip('/')}/{name}.parquet"
        frame.write.mode("overwrite").parquet(path)
        paths[name] = path
    return paths
