"""Alembic environment: metadata from the models, URL from config or settings.

A caller that already holds a connection (tests, ``inferloop.store.migrate``)
passes it in ``config.attributes["connection"]``; otherwise an engine is made
from ``sqlalchemy.url``, the ``-x url=...`` argument, or ``Settings``.
"""

from __future__ import annotations

from alembic import context

from inferloop.store.base import create_engine_for
from inferloop.store.metadata import metadata

config = context.config
target_metadata = metadata()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    from inferloop.settings import Settings

    return Settings().resolved_database_url()


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = create_engine_for(_url())
    try:
        with engine.begin() as connection:
            _configure_and_run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
