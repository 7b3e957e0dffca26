"""SQLite transactions that read before they write: `begin_write` queues them behind
other writers instead of failing with "database is locked"."""

import threading

import sqlalchemy as sa

from inferloop.store.base import begin_write, create_engine_for


def _engine(tmp_path):
    engine = create_engine_for(f"sqlite:///{tmp_path / 'writes.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
    return engine


def _read_then_write(engine, begin, other_commits: threading.Event, go: threading.Event):
    with begin() as connection:
        n = connection.execute(sa.text("SELECT n FROM counter")).scalar_one()
        go.set()
        other_commits.wait(5)
        connection.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})


def _writer(engine, go: threading.Event, committed: threading.Event, errors: list):
    go.wait(5)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE counter SET n = n + 100"))
    except sa.exc.OperationalError as error:
        errors.append(error)
    committed.set()


def _race(engine, begin):
    go, committed, errors = threading.Event(), threading.Event(), []
    other = threading.Thread(target=_writer, args=(engine, go, committed, errors))
    other.start()
    try:
        _read_then_write(engine, begin, committed, go)
    except sa.exc.OperationalError as error:
        errors.append(error)
    finally:
        go.set()
        other.join(10)
    return errors


def test_a_deferred_read_then_write_fails_when_another_writer_commits_between(tmp_path):
    engine = _engine(tmp_path)
    errors = _race(engine, engine.begin)
    assert any("locked" in str(error) for error in errors)


def test_begin_write_queues_instead_and_loses_no_update(tmp_path):
    engine = _engine(tmp_path)
    # The writer waits on busy_timeout while begin_write holds the lock; the event it
    # waits for is set only after its commit, so give up on it after a short wait.
    errors = _race(engine, lambda: begin_write(engine))
    assert errors == []
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT n FROM counter")).scalar_one() == 101
