"""Bad input and faults, as one table: a typed error naming the culprit, and nothing changed.

Every case of :data:`CASES` runs one bad call against a store whose feature group
``spend`` is written (two days of rows) and served to an embedded and a Redis online
table, and checks that

1. it raises the expected subclass of :class:`~seeknal_spark.errors.SeeknalError`,
2. the message names the culprit (the column, name, path, key, file:line or host:port)
   and reads as one clean message: no Python or JVM traceback, no Py4J text, no secret,
3. the store is as it was (its version folders and the commit files of every Delta table
   in it, the registry's included: a commit or a half-created table shows there), and so
   are the served generation, the generations held and the served values of fixed keys
   on both sinks. The store's API (``current_table_version``, the rows, the registry) is
   checked against the setup once more after every case, by the module's last test.

The issue's items, by case id: (2) ``empty_rerun_of_a_written_window``, (5)
``store_path_is_a_file``, (6) ``input_path_does_not_exist``, (7)
``udf_raises_on_an_executor*``; (4) the "forever" TTL is not an error and has its own test,
:func:`test_a_forever_ttl_is_no_limit`. Null spine keys and times are documented as no error
(:func:`seeknal_spark.offline.pit.point_in_time_join`, step 8 "Rows"):
:func:`test_a_spine_row_with_a_null_key_or_time_gets_null_features`. Injection-looking keys
read as unknown keys: :func:`test_injection_looking_keys_are_unknown_keys`.

Covered elsewhere, not repeated here: (1) two concurrent writers,
``tests/store/test_concurrency.py``; (3) Redis killed mid-export,
``tests/online/test_online_atomic.py::test_redis_killed_during_an_export``; (8) the jobs'
bad arguments, ``tests/interfaces/test_jobs.py`` (``test_job_fails_with_a_clear_message``,
``test_every_job_answers_bad_arguments_with_one_line``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seeknal_spark import (
    EmbeddedSink,
    Entity,
    FeatureGroup,
    FeatureLookup,
    FeatureStore,
    HistoricalFeatures,
    OnlineSink,
    OnlineTable,
    RedisSink,
)
from seeknal_spark.app.config import load_config
from seeknal_spark.app.project import Project
from seeknal_spark.errors import (
    ColumnTypeError,
    ConfigurationError,
    EmptyWindowError,
    InvalidNameError,
    MissingColumnError,
    NotFoundError,
    NullValueError,
    OnlineStoreError,
    SeeknalError,
    TransformError,
    VersionConflictError,
)
from tests.redis_server import redis_url

__all__ = ["redis_url"]  # the fixture, imported for this module

CUSTOMER = Entity("customer", ["customer_id"])
SCHEMA = "customer_id string, ts timestamp, amount double"
T0, T2 = datetime(2024, 1, 1), datetime(2024, 1, 3)  # the written window: two days
SERVED_AT = datetime(2024, 1, 5)
TABLE = "spend_online"
KEYS = ["c1", "c2", "c3", "c9"]  # c9 is not stored
ROWS: list[tuple[Any, ...]] = [
    ("c1", datetime(2024, 1, 1, 9), 10.0),
    ("c2", datetime(2024, 1, 1, 10), 20.0),
    ("c1", datetime(2024, 1, 2, 9), 30.0),
    ("c3", datetime(2024, 1, 2, 12), 5.0),
]
#: What a clean one-message error never holds.
NOISE = ("Traceback", "py4j", "Py4J", "at org.apache", "JVM stacktrace")


def spend(txns: DataFrame) -> DataFrame:
    """The transform of ``spend``: one row per transaction."""
    return txns.select("customer_id", F.col("ts").alias("day"), "amount")


@dataclass
class Ctx:
    """The shared world of the module: one store, one served group, two sinks."""

    spark: SparkSession
    folder: Path
    store: FeatureStore
    group: FeatureGroup
    hist: HistoricalFeatures
    sinks: dict[str, OnlineSink]
    redis_url: str
    #: placeholders of the culprits: ``{redis}`` and ``{down}`` (a closed port)
    fmt: dict[str, str]
    last: dict[str, Any] = field(default_factory=dict)
    #: :meth:`table` after the setup
    written: dict[str, Any] = field(default_factory=dict)

    @property
    def redis(self) -> RedisSink:
        sink = self.sinks["redis"]
        assert isinstance(sink, RedisSink)
        return sink

    def frame(self, rows: list[tuple[Any, ...]], schema: str = SCHEMA) -> DataFrame:
        return self.spark.createDataFrame(rows, schema)

    def group_with(
        self,
        transform: Callable[..., DataFrame] = spend,
        inputs: dict[str, Any] | None = None,
        *,
        name: str = "spend",
        store: FeatureStore | None = None,
        ttl: timedelta | None = None,
    ) -> FeatureGroup:
        """``spend`` (or ``name``) with another transform, inputs or store."""
        return FeatureGroup(
            name,
            CUSTOMER,
            "day",
            transform,
            ttl=ttl,
            inputs=inputs if inputs is not None else {"txns": self.frame(ROWS)},
            store=store or self.store,
        )

    def spine(self, rows: list[tuple[Any, ...]] | None = None, schema: str = "") -> DataFrame:
        rows = rows if rows is not None else [("c1", T2), ("c2", T2)]
        return self.frame(rows, schema or "customer_id string, prediction_time timestamp")

    def served(self) -> dict[str, Any]:
        """Per sink: the served generation, every generation held, and the served values."""
        out: dict[str, Any] = {}
        for kind, sink in self.sinks.items():
            found = sink.read_metadata(TABLE)
            table = OnlineTable.open(TABLE, sink=sink)
            got = table.get_features(keys=[{"customer_id": k} for k in KEYS])
            out[kind] = {
                "generation": None if found is None else found[0],
                "generations": sink.generations(TABLE),
                "values": got.rows,
                "found": got.found,
            }
            if isinstance(sink, RedisSink):
                keys = sink.client().scan_iter(f"{sink.key_prefix}:*")
                out[kind]["redis_keys"] = sorted(k.decode() for k in keys)
        return out

    def stored(self) -> dict[str, Any]:
        """The commit files of every Delta table in the store (the groups' tables and the
        registry): any commit shows here, without a Spark job. A folder a failed creating
        write left without a commit is no table (and the next write takes it over:
        ``test_a_failed_first_write_does_not_block_its_version``)."""
        root = Path(self.store.path or "")
        commits = {
            str(log.parent.relative_to(root)): sorted(f.name for f in log.glob("*.json"))
            for log in sorted(root.glob("**/_delta_log"))
        }
        return {"commits": {table: files for table, files in commits.items() if files}}

    def table(self) -> dict[str, Any]:
        """What the store API says of ``spend`` v1: its Delta version, rows and registry."""
        rows = self.store.read_table("spend", "v1").drop("_seeknal_write_time").collect()
        return {
            "delta_version": self.store.current_table_version("spend", "v1"),
            "rows": sorted(tuple(r) for r in rows),
            "registry": [
                (d.name, d.version, d.transform_hash) for d in self.store.list_feature_groups()
            ],
        }

    def state(self) -> dict[str, Any]:
        """A fingerprint of everything a failed call must leave as it was."""
        return {**self.stored(), "served": self.served()}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


@pytest.fixture(scope="module")
def ctx(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Ctx]:
    """``spend`` written for two days and served to an embedded and a Redis table."""
    folder = tmp_path_factory.mktemp("faults")
    store = FeatureStore(str(folder / "store"), spark=spark)
    group = FeatureGroup(
        "spend", CUSTOMER, "day", spend, inputs={"txns": spark.createDataFrame(ROWS, SCHEMA)}
    )
    store.register(group).write(T0, T2)
    hist = HistoricalFeatures([FeatureLookup(group)])
    redis = RedisSink(redis_url, key_prefix=f"faults{os.getpid()}")
    sinks: dict[str, OnlineSink] = {"embedded": EmbeddedSink(folder / "online"), "redis": redis}
    for sink in sinks.values():
        hist.serve(TABLE, sink=sink, as_of=SERVED_AT, progress=False)
    host = redis_url.split("://", 1)[1].split("/", 1)[0]
    world = Ctx(
        spark=spark,
        folder=folder,
        store=store,
        group=group,
        hist=hist,
        sinks=sinks,
        redis_url=redis_url,
        fmt={"redis": host, "down": f"127.0.0.1:{_closed_port()}"},
    )
    world.last = world.state()
    world.written = world.table()
    assert world.written["rows"] == sorted(ROWS)
    # the commit files agree with the store's API: the fingerprint sees the table's version
    last_commit = world.last["commits"]["feature_groups/spend/v1"][-1]
    assert int(last_commit.split(".")[0]) == world.written["delta_version"]
    served = world.last["served"]["embedded"]["values"]
    assert served == [{"amount": 30.0}, {"amount": 20.0}, {"amount": 5.0}, {"amount": None}]
    assert world.last["served"]["redis"]["values"] == served
    yield world
    leftover = list(redis.client().scan_iter(f"{redis.key_prefix}:*"))
    if leftover:
        redis.client().delete(*leftover)


# -- the actions ---------------------------------------------------------------------------
def _write_file(ctx: Ctx, name: str, text: str) -> Path:
    path = ctx.folder / name
    path.write_text(text)
    return path


def _store_path_is_a_file(ctx: Ctx) -> object:
    blocker = _write_file(ctx, "not_a_folder.txt", "x")
    store = FeatureStore(str(blocker / "store"), spark=ctx.spark)
    return ctx.group_with(store=store).write(T0, T2)


def _udf_raises(ctx: Ctx, version: str, mode: str, **kwargs: Any) -> object:
    @F.udf("double")
    def explode(amount: float) -> float:
        raise ZeroDivisionError(f"bad amount {amount}")

    def failing(txns: DataFrame) -> DataFrame:
        return spend(txns).withColumn("amount", explode("amount"))

    group = ctx.group_with(failing)
    return group.write(T0, T2, version=version, mode=mode, **kwargs)  # type: ignore[arg-type]


def _renamed_spend(txns: DataFrame) -> DataFrame:
    return txns.select(
        "customer_id", F.col("ts").alias("day"), (F.col("amount") * 1).alias("amount")
    )


def _without_key(txns: DataFrame) -> DataFrame:
    return txns.select(F.col("ts").alias("day"), "amount")


def _feature_named_like_sql(txns: DataFrame) -> DataFrame:
    return spend(txns).withColumnRenamed("amount", "amount; DROP TABLE t")


def _wrong_password(ctx: Ctx) -> object:
    """Open the served table with a wrong password while the server requires one."""
    admin = RedisSink(ctx.redis_url).client()
    admin.config_set("requirepass", "right-pw-1")
    try:
        url = ctx.redis_url.replace("redis://", "redis://:wrong-pw-1@")
        return OnlineTable.open(TABLE, sink=RedisSink(url, key_prefix=ctx.redis.key_prefix))
    finally:
        admin.execute_command("AUTH", "right-pw-1")
        admin.config_set("requirepass", "")
        admin.close()


def _down(ctx: Ctx) -> RedisSink:
    return RedisSink(f"redis://:s3cret-pw@{ctx.fmt['down']}/0", socket_timeout=2)


YAML_SYNTAX = "project:\n  name: demo\nstore:\n  path: ./store: x\n"
YAML_UNKNOWN_KEY = "project:\n  name: demo\nstore:\n  path: ./store\n  pth: ./other\n"


@dataclass(frozen=True)
class Case:
    """One bad call: what it does, the error it must raise, what the message must name."""

    id: str
    action: Callable[[Ctx], object]
    error: type[SeeknalError]
    culprit: str | list[str]
    #: what the message must not hold (secrets)
    absent: tuple[str, ...] = ()

    @property
    def culprits(self) -> list[str]:
        return [self.culprit] if isinstance(self.culprit, str) else list(self.culprit)


def _per_sink(
    name: str, action: Callable[[Ctx, OnlineSink], object], error: type[SeeknalError], culprit: str
) -> list[Case]:
    """The case on each sink: ids ``name[embedded]`` and ``name[redis]``."""

    def bind(kind: str) -> Callable[[Ctx], object]:
        return lambda ctx: action(ctx, ctx.sinks[kind])

    return [Case(f"{name}[{kind}]", bind(kind), error, culprit) for kind in ("embedded", "redis")]


def _write_input(ctx: Ctx, rows: list[tuple[Any, ...]], schema: str = SCHEMA) -> object:
    """Write the window of ``spend`` (same transform) from other input rows."""
    return ctx.group_with(inputs={"txns": ctx.frame(rows, schema)}).write(T0, T2)


def _lookup(ctx: Ctx, **kwargs: Any) -> object:
    return (
        HistoricalFeatures([FeatureLookup(ctx.group, **kwargs)]).to_dataframe(ctx.spine()).collect()
    )


def _to_dataframe(ctx: Ctx, spine: DataFrame) -> object:
    return ctx.hist.to_dataframe(spine).collect()


CASES: list[Case] = [
    # -- names with path or SQL characters ---------------------------------------------------
    Case("group_name_with_a_path", lambda c: c.group_with(name="../x"), InvalidNameError, "'../x'"),
    Case(
        "group_name_with_sql",
        lambda c: c.group_with(name="a; DROP TABLE t"),
        InvalidNameError,
        "'a; DROP TABLE t'",
    ),
    Case(
        "version_with_a_slash",
        lambda c: c.group.write(T0, T2, version="a/b"),
        InvalidNameError,
        "'a/b'",
    ),
    Case(
        "read_a_version_with_sql",
        lambda c: c.store.read_table("spend", "v1; DROP TABLE t"),
        InvalidNameError,
        "'v1; DROP TABLE t'",
    ),
    Case(
        "feature_named_with_sql_in_the_output",
        lambda c: c.group_with(_feature_named_like_sql).write(T0, T2, version="v2"),
        InvalidNameError,
        "'amount; DROP TABLE t'",
    ),
    Case(
        "lookup_feature_named_with_sql",
        lambda c: FeatureLookup(c.group, features=["x' OR '1'='1"]),
        InvalidNameError,
        "x' OR '1'='1",
    ),
    Case(
        "online_table_name_with_a_path[embedded]",
        lambda c: c.hist.serve("../x", sink=c.sinks["embedded"], as_of=SERVED_AT, progress=False),
        InvalidNameError,
        "'../x'",
    ),
    Case(
        "online_table_name_with_sql[redis]",
        lambda c: c.hist.serve(
            "a; DROP TABLE t", sink=c.sinks["redis"], as_of=SERVED_AT, progress=False
        ),
        InvalidNameError,
        "'a; DROP TABLE t'",
    ),
    *_per_sink(
        "open_online_table_a/b",
        lambda c, s: OnlineTable.open("a/b", sink=s),
        InvalidNameError,
        "'a/b'",
    ),
    # -- unknown features, groups, versions, tables ------------------------------------------
    Case(
        "unknown_feature_in_a_lookup",
        lambda c: _lookup(c, features=["nope"]),
        NotFoundError,
        ["'nope'", "'spend'"],
    ),
    Case("unknown_version", lambda c: _lookup(c, version="v9"), NotFoundError, ["'v9'", "'spend'"]),
    Case(
        "unknown_group",
        lambda c: (
            HistoricalFeatures([FeatureLookup(c.group_with(name="ghost"))])
            .to_dataframe(c.spine())
            .collect()
        ),
        NotFoundError,
        "'ghost'",
    ),
    Case(
        "unknown_delta_version",
        lambda c: c.store.read_table("spend", "v1", as_of_version=99).collect(),
        NotFoundError,
        ["'spend'", "as_of_version=99"],
    ),
    *_per_sink(
        "unknown_online_table",
        lambda c, s: OnlineTable.open("never_served", sink=s),
        NotFoundError,
        "'never_served'",
    ),
    *_per_sink(
        "get_features_of_an_unknown_feature",
        lambda c, s: OnlineTable.open(TABLE, sink=s).get_features(
            keys=[{"customer_id": "c1"}], feature_names=["nope"]
        ),
        NotFoundError,
        "'nope'",
    ),
    *_per_sink(
        "get_features_with_a_key_lacking_its_join_column",
        lambda c, s: OnlineTable.open(TABLE, sink=s).get_features(keys=[{"customer": "c1"}]),
        MissingColumnError,
        "'customer_id'",
    ),
    # -- the spine: missing and mistyped keys and times ---------------------------------------
    Case(
        "spine_without_the_join_key",
        lambda c: _to_dataframe(c, c.spine().drop("customer_id")),
        MissingColumnError,
        ["'customer_id'", "'spend'"],
    ),
    Case(
        "spine_without_the_prediction_time",
        lambda c: _to_dataframe(c, c.spine().drop("prediction_time")),
        MissingColumnError,
        "'prediction_time'",
    ),
    Case(
        "spine_key_of_the_wrong_type",
        lambda c: _to_dataframe(
            c, c.spine([(1, T2)], "customer_id bigint, prediction_time timestamp")
        ),
        ColumnTypeError,
        "'customer_id'",
    ),
    Case(
        "spine_time_of_the_wrong_type",
        lambda c: _to_dataframe(
            c, c.spine([("c1", "2024-01-03")], "customer_id string, prediction_time string")
        ),
        ColumnTypeError,
        "'prediction_time'",
    ),
    # -- the YAML project ------------------------------------------------------------------------
    Case(
        "yaml_syntax_error",
        lambda c: load_config(_write_file(c, "bad_syntax.yaml", YAML_SYNTAX)),
        ConfigurationError,
        ["bad_syntax.yaml:4:", "invalid YAML"],
    ),
    Case(
        "yaml_unknown_key",
        lambda c: Project.load(_write_file(c, "unknown_key.yaml", YAML_UNKNOWN_KEY), spark=c.spark),
        ConfigurationError,
        ["unknown_key.yaml:5:", "'pth'"],
    ),
    # -- Redis down or refusing the password ---------------------------------------------------
    Case(
        "redis_down_on_open",
        lambda c: OnlineTable.open(TABLE, sink=_down(c)),
        OnlineStoreError,
        "{down}",
        absent=("s3cret-pw",),
    ),
    Case(
        "redis_down_on_serve",
        lambda c: c.hist.serve(TABLE, sink=_down(c), as_of=SERVED_AT, progress=False),
        OnlineStoreError,
        "{down}",
        absent=("s3cret-pw",),
    ),
    Case(
        "redis_wrong_password",
        _wrong_password,
        OnlineStoreError,
        ["password", "{redis}"],
        absent=("wrong-pw-1", "right-pw-1"),
    ),
    # -- writes: the items and bad transform output ------------------------------------
    Case(
        "store_path_is_a_file",
        _store_path_is_a_file,
        ConfigurationError,
        "not_a_folder.txt",
    ),
    Case(
        "input_path_does_not_exist",
        lambda c: c.group_with(inputs={"txns": str(c.folder / "no_such_input.parquet")}).write(
            T0, T2
        ),
        NotFoundError,
        ["no_such_input.parquet", "'spend'", "'txns'"],
    ),
    Case(
        "changed_transform_into_the_written_version",
        lambda c: c.group_with(_renamed_spend).write(T0, T2),
        VersionConflictError,
        ["'spend'", "'v1'", "version='v2'"],
    ),
    Case(
        "udf_raises_on_an_executor",
        # the changed transform is allowed, so that the job runs: it fails, nothing changes
        lambda c: _udf_raises(c, "v1", "overwrite", allow_definition_change=True),
        TransformError,
        ["'spend'", "ZeroDivisionError"],
    ),
    Case(
        "udf_raises_on_an_executor_appending_to_a_new_version",
        lambda c: _udf_raises(c, "v2", "append"),
        TransformError,
        ["'spend'", "ZeroDivisionError"],
    ),
    Case(
        "transform_output_without_the_key",
        lambda c: c.group_with(_without_key).write(T0, T2),
        MissingColumnError,
        ["'customer_id'", "'spend'"],
    ),
    Case(
        "input_lacks_a_column_the_transform_selects",
        lambda c: _write_input(c, [("c1", T0, 1.0)], "customer_id string, ts timestamp, x double"),
        SeeknalError,
        ["'spend'", "amount"],
    ),
    Case(
        "event_time_of_the_wrong_type",
        lambda c: _write_input(
            c, [("c1", "2024-01-01", 1.0)], SCHEMA.replace("timestamp", "string")
        ),
        ColumnTypeError,
        ["'day'", "'spend'"],
    ),
    Case(
        "null_key",
        lambda c: _write_input(c, [*ROWS, (None, T0, 1.0)]),
        NullValueError,
        ["'customer_id'", "'spend'"],
    ),
    Case(
        "null_event_time",
        lambda c: _write_input(c, [*ROWS, ("c1", None, 1.0)]),
        NullValueError,
        ["'day'", "'spend'"],
    ),
    Case(
        "empty_rerun_of_a_written_window",
        lambda c: _write_input(c, []),
        EmptyWindowError,
        ["'spend'", "allow_empty=True"],
    ),
    Case(
        "key_of_the_wrong_type_in_the_output",
        lambda c: _write_input(c, [(1, T0, 1.0)], SCHEMA.replace("string", "bigint")),
        ColumnTypeError,
        ["'customer_id'", "'spend'"],
    ),
]


def _first_lines(exc: BaseException, n: int = 3) -> str:
    return "\n    ".join(str(exc).splitlines()[:n])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_fault_raises_a_typed_error_naming_the_culprit_and_changes_nothing(
    ctx: Ctx, case: Case
) -> None:
    before = ctx.last
    raised: Exception | None = None
    try:
        case.action(ctx)
    except Exception as exc:  # judged below, with the state, so every problem is reported
        raised = exc
    after = ctx.state()
    ctx.last = after  # the next case compares with what this one left
    problems = []
    if raised is None:
        problems.append(f"no error raised (expected {case.error.__name__})")
    else:
        message = str(raised)
        got = f"{type(raised).__module__}.{type(raised).__name__}: {_first_lines(raised)}"
        if not isinstance(raised, case.error):
            problems.append(f"expected {case.error.__name__}, got {got}")
        elif not isinstance(raised, SeeknalError):
            problems.append(f"not a SeeknalError: {got}")
        missing = [c for c in (s.format(**ctx.fmt) for s in case.culprits) if c not in message]
        if missing:
            problems.append(f"the message does not name {missing}: {got}")
        noise = [n for n in NOISE if n in message]
        if noise:
            problems.append(f"the message holds {noise}: {got}")
        leaked = [s for s in case.absent if s in message]
        if leaked:
            problems.append(f"the message leaks {leaked}")
    for part in sorted(set(before) | set(after)):
        if before.get(part) != after.get(part):
            problems.append(f"{part} changed: {before.get(part)} -> {after.get(part)}")
    if problems:
        raise AssertionError("\n".join(problems)) from raised


@pytest.mark.parametrize("sink_kind", ["embedded", "redis"])
@pytest.mark.parametrize(
    "key",
    ["x' OR '1'='1", "*", "a\r\nFLUSHALL\r\n", '["c1"]', 'c1"]', "c1\x00", "c%", ""],
    ids=[
        "sql_quote",
        "glob",
        "crlf_flushall",
        "encoded_key",
        "quote_bracket",
        "nul",
        "like",
        "empty",
    ],
)
def test_injection_looking_keys_are_unknown_keys(ctx: Ctx, sink_kind: str, key: str) -> None:
    before = ctx.served()
    table = OnlineTable.open(TABLE, sink=ctx.sinks[sink_kind])
    got = table.get_features(keys=[{"customer_id": key}, {"customer_id": "c1"}])
    assert got.rows == [{"amount": None}, {"amount": 30.0}]
    assert got.found == [False, True]
    assert ctx.served() == before


def test_a_spine_row_with_a_null_key_or_time_gets_null_features(ctx: Ctx) -> None:
    """Documented (point_in_time_join, step 8): null features, or the lookup's default."""
    hist = HistoricalFeatures(
        [
            FeatureLookup(ctx.group, prefix="plain_"),
            FeatureLookup(ctx.group, prefix="filled_", default=-1.0),
        ]
    )
    out = hist.to_dataframe(ctx.spine([("c1", T2), (None, T2), ("c2", None)])).collect()
    got = [tuple(r) for r in out]
    assert sorted(got, key=repr) == sorted(
        [("c1", T2, 30.0, 30.0), (None, T2, None, -1.0), ("c2", None, None, -1.0)], key=repr
    )


@pytest.mark.parametrize("where", ["group", "lookup"])
def test_a_forever_ttl_is_no_limit(ctx: Ctx, where: str) -> None:
    """``timedelta.max`` on a group or a lookup means no limit, in training and serving."""
    if where == "group":
        forever = ctx.group_with(ttl=timedelta.max)  # the stored spend v1, read with this TTL
        assert forever.ttl is None
        lookup = FeatureLookup(forever)
    else:
        lookup = FeatureLookup(ctx.group, ttl=timedelta.max)
    far = datetime(2999, 1, 1)
    hist = HistoricalFeatures([lookup])
    out = hist.to_dataframe(ctx.spine([("c2", far)])).collect()
    assert [r["amount"] for r in out] == [20.0]
    sink = EmbeddedSink(ctx.folder / f"forever_{where}")
    table = hist.serve("forever", sink=sink, as_of=far, expire_keys=True, progress=False)
    assert table.get_features(keys={"customer_id": "c2"})["amount"] == 20.0


def test_a_failed_first_write_does_not_block_its_version(ctx: Ctx) -> None:
    """A transform failing in the first write of a version leaves no table, and the next
    write of that version lands (Delta leaves a folder without a commit behind)."""
    store = FeatureStore(str(ctx.folder / "first_write_store"), spark=ctx.spark)

    @F.udf("double")
    def explode(amount: float) -> float:
        raise ZeroDivisionError(f"bad amount {amount}")

    def failing(txns: DataFrame) -> DataFrame:
        return spend(txns).withColumn("amount", explode("amount"))

    with pytest.raises(TransformError, match="ZeroDivisionError"):
        ctx.group_with(failing, store=store).write(T0, T2, version="v1")
    assert not store.table_exists("spend", "v1")
    written = ctx.group_with(store=store).write(T0, T2, version="v1")
    assert (written.delta_version, written.rows_written) == (0, len(ROWS))
    assert store.read_table("spend", "v1").count() == len(ROWS)


def test_the_stored_table_is_as_written_after_every_fault(ctx: Ctx) -> None:
    """Last: the store's API sees the rows, Delta version and registry of the setup."""
    assert ctx.table() == ctx.written
    assert ctx.state() == ctx.last

