"""The model registry on both databases: concurrent numbering, the state machine, and the
history that answers "which version was live at time T"."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from inferloop.feedback import (
    LEGAL_MOVES,
    IllegalMoveError,
    UnknownVersionError,
    VersionState,
    get_version,
    live_at,
    live_version,
    move_version,
    register_version,
    version_history,
    version_states,
)
from inferloop.store import create_engine_for

MODEL = "ranker"
PROD = "production"
T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000
C, CANARY, LIVE, RETIRED, BACK = (
    VersionState.CANDIDATE,
    VersionState.CANARY,
    VersionState.LIVE,
    VersionState.RETIRED,
    VersionState.ROLLED_BACK,
)


def _register(engine, *, at: int = T0, model: str = MODEL) -> int:
    with engine.begin() as connection:
        return register_version(
            connection, model, artifact_uri=f"s3://models/{model}", who="ci", now_ns=at
        ).version


def _move(engine, version: int, to: VersionState, *, at: int, why: str = "step", **extra):
    with engine.begin() as connection:
        return move_version(
            connection,
            MODEL,
            version,
            to,
            environment=extra.pop("environment", PROD),
            who=extra.pop("who", "ops"),
            why=why,
            now_ns=at,
            evidence=extra.pop("evidence", None),
        )


def _promote(engine, version: int, *, at: int) -> None:
    _move(engine, version, CANARY, at=at)
    _move(engine, version, LIVE, at=at + 1)


def _states(engine, environment: str = PROD) -> dict[int, VersionState]:
    with engine.connect() as connection:
        return {
            s.version: s.state for s in version_states(connection, MODEL, environment=environment)
        }


def _live_at(engine, time_ns: int, environment: str = PROD) -> int | None:
    with engine.connect() as connection:
        return live_at(connection, MODEL, environment=environment, time_ns=time_ns)


def test_fifty_concurrent_registrations_get_unique_contiguous_numbers(migrated_engine):
    url = migrated_engine.url.render_as_string(hide_password=False)
    engine = create_engine_for(url, pool_size=50, max_overflow=0)
    start = threading.Barrier(50)

    def register(worker: int) -> int:
        with engine.connect() as connection:
            start.wait()
            with connection.begin():
                return register_version(
                    connection,
                    MODEL,
                    artifact_uri=f"s3://models/ranker/{worker}",
                    who=f"worker-{worker}",
                    now_ns=T0 + worker,
                ).version

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            numbers = list(pool.map(register, range(50)))
    finally:
        engine.dispose()
    assert sorted(numbers) == list(range(1, 51))
    with migrated_engine.connect() as connection:
        for worker, number in enumerate(numbers):
            stored = get_version(connection, MODEL, number)
            assert stored.artifact_uri == f"s3://models/ranker/{worker}"
            assert stored.registered_by == f"worker-{worker}"


def test_a_registered_version_keeps_what_it_was_built_from(migrated_engine):
    with migrated_engine.begin() as connection:
        registered = register_version(
            connection,
            MODEL,
            artifact_uri="s3://models/ranker/7",
            who="retrain-job",
            now_ns=T0,
            metrics={"auc": 0.91},
            metadata={"framework": "xgboost"},
            source_snapshot_uri="file:///snapshots/abc",
            source_snapshot_hash="sha256:abc",
        )
    with migrated_engine.connect() as connection:
        assert get_version(connection, MODEL, registered.version) == registered
        (first,) = version_history(connection, MODEL, registered.version)
    assert (first.from_state, first.to_state, first.environment) == (None, C, None)
    assert first.evidence["source_snapshot_hash"] == "sha256:abc"


def test_version_numbers_are_counted_per_model(migrated_engine):
    assert [_register(migrated_engine) for _ in range(3)] == [1, 2, 3]
    assert _register(migrated_engine, model="fraud") == 1


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], CANARY),
        ([], BACK),
        ([CANARY], LIVE),
        ([CANARY], BACK),
        ([CANARY, LIVE], RETIRED),
        ([CANARY, LIVE], BACK),
    ],
)
def test_each_legal_move_is_made_and_recorded(migrated_engine, path, target):
    version = _register(migrated_engine)
    for step, state in enumerate([*path, target], start=1):
        _move(migrated_engine, version, state, at=T0 + step)
    assert _states(migrated_engine) == {version: target}
    with migrated_engine.connect() as connection:
        moves = version_history(connection, MODEL, version)
    assert [m.to_state for m in moves] == [C, *path, target]


# Stated here, not derived from LEGAL_MOVES, so the table itself is under test.
_PATH_TO = {
    C: [],
    CANARY: [CANARY],
    LIVE: [CANARY, LIVE],
    RETIRED: [CANARY, LIVE, RETIRED],
    BACK: [BACK],
}
_REFUSED = {
    C: [C, LIVE, RETIRED],
    CANARY: [C, CANARY, RETIRED],
    LIVE: [C, CANARY, LIVE],
    RETIRED: list(VersionState),
    BACK: list(VersionState),
}
ILLEGAL = [(_PATH_TO[state], target) for state, targets in _REFUSED.items() for target in targets]


def test_the_legal_moves_are_exactly_those_not_refused():
    for state, refused in _REFUSED.items():
        assert LEGAL_MOVES[state] == set(VersionState) - set(refused)


@pytest.mark.parametrize(("path", "target"), ILLEGAL)
def test_each_illegal_move_is_refused_and_leaves_no_trace(migrated_engine, path, target):
    version = _register(migrated_engine)
    for step, state in enumerate(path, start=1):
        _move(migrated_engine, version, state, at=T0 + step)
    before = _states(migrated_engine)
    with pytest.raises(IllegalMoveError, match=f"cannot move to {target}"):
        _move(migrated_engine, version, target, at=T0 + 100)
    assert _states(migrated_engine) == before
    with migrated_engine.connect() as connection:
        assert len(version_history(connection, MODEL, version)) == 1 + len(path)


def test_moving_an_unregistered_version_or_model_is_refused(migrated_engine):
    _register(migrated_engine)
    with pytest.raises(UnknownVersionError):
        _move(migrated_engine, 2, CANARY, at=T0)
    with migrated_engine.begin() as connection, pytest.raises(UnknownVersionError):
        move_version(connection, "nope", 1, CANARY, environment=PROD, who="a", why="b", now_ns=T0)


def test_an_unknown_state_is_an_illegal_move(migrated_engine):
    version = _register(migrated_engine)
    with pytest.raises(IllegalMoveError, match="cannot move to production-ish"):
        _move(migrated_engine, version, "production-ish", at=T0)


def test_a_move_without_who_or_why_is_refused(migrated_engine):
    version = _register(migrated_engine)
    with pytest.raises(ValueError, match="why"):
        _move(migrated_engine, version, CANARY, at=T0, why="")


def test_promotion_retires_the_previous_live_version_in_the_same_transaction(migrated_engine):
    first, second = _register(migrated_engine), _register(migrated_engine)
    _promote(migrated_engine, first, at=T0 + 10)
    _move(migrated_engine, second, CANARY, at=T0 + 20)
    moves = _move(migrated_engine, second, LIVE, at=T0 + 30, why="guard passed")
    assert [(m.version, m.from_state, m.to_state) for m in moves] == [
        (first, LIVE, RETIRED),
        (second, CANARY, LIVE),
    ]
    assert moves[0].why == f"replaced by version {second}: guard passed"
    assert _states(migrated_engine) == {first: RETIRED, second: LIVE}
    with migrated_engine.connect() as connection:
        assert live_version(connection, MODEL, environment=PROD) == second


def test_a_failed_promotion_leaves_the_previous_live_version_live(migrated_engine):
    first, second = _register(migrated_engine), _register(migrated_engine)
    _promote(migrated_engine, first, at=T0 + 10)
    _move(migrated_engine, second, CANARY, at=T0 + 20)
    with pytest.raises(RuntimeError), migrated_engine.begin() as connection:
        move_version(
            connection, MODEL, second, LIVE, environment=PROD, who="a", why="b", now_ns=T0 + 30
        )
        raise RuntimeError("the caller's own write failed after the move")
    assert _states(migrated_engine) == {first: LIVE, second: CANARY}


def test_states_are_kept_per_environment(migrated_engine):
    version = _register(migrated_engine)
    _promote(migrated_engine, version, at=T0 + 10)
    _move(migrated_engine, version, CANARY, at=T0 + 20, environment="staging")
    assert _states(migrated_engine) == {version: LIVE}
    assert _states(migrated_engine, "staging") == {version: CANARY}
    assert _states(migrated_engine, "eu") == {version: C}
    assert _live_at(migrated_engine, T0 + 30, "staging") is None


def test_live_at_answers_before_and_after_a_promotion(migrated_engine):
    first, second = _register(migrated_engine), _register(migrated_engine)
    _promote(migrated_engine, first, at=T0 + 10 * SECOND)
    _move(migrated_engine, second, CANARY, at=T0 + 20 * SECOND)
    _move(migrated_engine, second, LIVE, at=T0 + 30 * SECOND)
    assert _live_at(migrated_engine, T0) is None
    assert _live_at(migrated_engine, T0 + 10 * SECOND) is None  # canary, not live yet
    assert _live_at(migrated_engine, T0 + 10 * SECOND + 1) == first
    assert _live_at(migrated_engine, T0 + 30 * SECOND - 1) == first
    assert _live_at(migrated_engine, T0 + 30 * SECOND) == second
    assert _live_at(migrated_engine, T0 + 99 * SECOND) == second


def test_rolling_back_a_live_version_makes_the_previous_one_live_again(migrated_engine):
    first, second = _register(migrated_engine), _register(migrated_engine)
    _promote(migrated_engine, first, at=T0 + 10 * SECOND)
    _promote(migrated_engine, second, at=T0 + 20 * SECOND)
    moves = _move(migrated_engine, second, BACK, at=T0 + 30 * SECOND, why="p95 regressed")
    assert [(m.version, m.from_state, m.to_state) for m in moves] == [
        (second, LIVE, BACK),
        (first, RETIRED, LIVE),
    ]
    assert _states(migrated_engine) == {first: LIVE, second: BACK}
    assert _live_at(migrated_engine, T0 + 25 * SECOND) == second
    assert _live_at(migrated_engine, T0 + 30 * SECOND) == first
    assert _live_at(migrated_engine, T0 + 15 * SECOND) == first


def test_rollbacks_walk_back_through_earlier_live_versions(migrated_engine):
    versions = [_register(migrated_engine) for _ in range(3)]
    for i, version in enumerate(versions):
        _promote(migrated_engine, version, at=T0 + (i + 1) * 10 * SECOND)
    _move(migrated_engine, versions[2], BACK, at=T0 + 40 * SECOND)
    _move(migrated_engine, versions[1], BACK, at=T0 + 50 * SECOND)
    assert _states(migrated_engine) == {versions[0]: LIVE, versions[1]: BACK, versions[2]: BACK}
    assert _live_at(migrated_engine, T0 + 45 * SECOND) == versions[1]
    assert _live_at(migrated_engine, T0 + 55 * SECOND) == versions[0]


def test_rolling_back_the_first_live_version_leaves_none_live(migrated_engine):
    version = _register(migrated_engine)
    _promote(migrated_engine, version, at=T0 + 10)
    _move(migrated_engine, version, BACK, at=T0 + 20)
    assert _live_at(migrated_engine, T0 + 15) == version
    assert _live_at(migrated_engine, T0 + 20) is None
    with migrated_engine.connect() as connection:
        assert live_version(connection, MODEL, environment=PROD) is None


def test_rolling_back_a_canary_keeps_the_live_version(migrated_engine):
    first, second = _register(migrated_engine), _register(migrated_engine)
    _promote(migrated_engine, first, at=T0 + 10)
    _move(migrated_engine, second, CANARY, at=T0 + 20)
    moves = _move(migrated_engine, second, BACK, at=T0 + 30)
    assert [(m.version, m.to_state) for m in moves] == [(second, BACK)]
    assert _live_at(migrated_engine, T0 + 40) == first


def test_concurrent_promotions_leave_exactly_one_live_version(migrated_engine):
    versions = [_register(migrated_engine) for _ in range(8)]
    for version in versions:
        _move(migrated_engine, version, CANARY, at=T0 - SECOND)
    url = migrated_engine.url.render_as_string(hide_password=False)
    engine = create_engine_for(url, pool_size=8, max_overflow=0)
    start = threading.Barrier(len(versions))

    def promote(version: int) -> None:
        with engine.connect() as connection:
            start.wait()
            with connection.begin():
                move_version(
                    connection,
                    MODEL,
                    version,
                    LIVE,
                    environment=PROD,
                    who="g",
                    why="passed",
                    now_ns=T0,
                )

    try:
        with ThreadPoolExecutor(max_workers=len(versions)) as pool:
            list(pool.map(promote, versions))
    finally:
        engine.dispose()
    states = _states(migrated_engine)
    live = [v for v, state in states.items() if state is LIVE]
    assert len(live) == 1
    assert sorted(states.values()) == sorted([LIVE] + [RETIRED] * (len(versions) - 1))
    assert _live_at(migrated_engine, T0) == live[0]


def test_history_is_append_only_with_who_why_and_evidence(migrated_engine):
    first, second = _register(migrated_engine), _register(migrated_engine)
    _promote(migrated_engine, first, at=T0 + 10)
    with migrated_engine.connect() as connection:
        before = version_history(connection, MODEL)
        table = sa.Table("registry_history", sa.MetaData(), autoload_with=connection)
        ids_before = connection.execute(sa.select(table.c.id).order_by(table.c.id)).scalars().all()
    evidence = {"p95_ms": {"candidate": 41.0, "live": 40.2}, "e_value": 0.7, "looks": 12}
    _move(migrated_engine, second, CANARY, at=T0 + 20, who="guard", why="redeploy requested")
    _move(migrated_engine, second, BACK, at=T0 + 30, who="guard", why="p95 +20%", evidence=evidence)
    with migrated_engine.connect() as connection:
        after = version_history(connection, MODEL)
        ids_after = connection.execute(sa.select(table.c.id).order_by(table.c.id)).scalars().all()
    assert after[: len(before)] == before  # earlier rows unchanged
    assert ids_after[: len(ids_before)] == ids_before
    last = after[-1]
    assert (last.version, last.from_state, last.to_state) == (second, CANARY, BACK)
    assert (last.who, last.why, last.evidence, last.at_ns) == (
        "guard",
        "p95 +20%",
        evidence,
        T0 + 30,
    )
    assert [(m.version, m.to_state) for m in after] == [
        (first, C),
        (second, C),
        (first, CANARY),
        (first, LIVE),
        (second, CANARY),
        (second, BACK),
    ]
