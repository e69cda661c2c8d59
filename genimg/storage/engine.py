"""Engines: a SQLite file in ``GENIMG_DATA_DIR`` by default, any SQLAlchemy URL from ``GENIMG_DB_URL``.

SQLite is set up for several writers (threads, or processes such as app replicas on one disk):
WAL (readers never block the writer), a 30 s busy timeout, and ``BEGIN IMMEDIATE`` for every
transaction, so a transaction takes the write lock when it starts and waits for it there; a
deferred one that read first and writes later would fail with "database is locked" instead of
waiting. The schema is brought to the newest migration the first time a URL is opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from genimg.config import settings
from genimg.errors import GenimgError

DB_FILE = "genimg.sqlite3"
BUSY_TIMEOUT_S = 30
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant shared by every process that migrates the same PostgreSQL database.
_PG_MIGRATION_LOCK = 0x67656E696D67  # "genimg"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_url() -> str:
    """The configured URL: ``GENIMG_DB_URL``, else a SQLite file in ``GENIMG_DATA_DIR`` (default ./data)."""
    env = settings()
    if env.db_url:
        return env.db_url
    return f"sqlite:///{env.data_dir / DB_FILE}"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None  # pysqlite must not BEGIN on its own: we do, IMMEDIATE
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across a crash of the app
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):  # noqa: ANN001
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[object]:
    """Hold a lock that every process migrating this database respects; yield a connection.

    SQLite: an flock on a file beside the database. PostgreSQL: a session advisory lock.
    """
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        lock_path = Path(url.database).with_suffix(".migrate.lock")
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                with engine.connect() as connection:
                    yield connection
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as connection:
        postgres = url.get_backend_name() == "postgresql"
        if postgres:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            connection.commit()
        try:
            yield connection
        finally:
            if postgres:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                connection.commit()


def migrate(engine: Engine) -> None:
    """Upgrade the database behind ``engine`` to the newest schema (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def open_engine(url: str) -> Engine:
    """A new engine for ``url``, its schema migrated to the newest revision.

    Raises GenimgError when the URL is malformed, its driver is missing or the server refuses.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise GenimgError(f"GENIMG_DB_URL {url!r} is not a database URL: use e.g. "
                          "postgresql+psycopg://user@host:5432/genimg or sqlite:////path/genimg.sqlite3") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})
        _sqlite_setup(engine)
    else:
        try:
            engine = create_engine(parsed, pool_pre_ping=True)
        except Exception as exc:  # a missing DBAPI driver, an unknown dialect
            raise GenimgError(f"cannot use database {parsed.render_as_string(hide_password=True)}: {exc}") from None
    try:
        migrate(engine)
    except Exception as exc:
        engine.dispose()
        if isinstance(exc, GenimgError):
            raise
        raise GenimgError(f"cannot open database {parsed.render_as_string(hide_password=True)}: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: :func:`database_url`), opened and migrated once."""
    url = url or database_url()
    with _lock:
        if url not in _engines:
            _engines[url] = open_engine(url)
        return _engines[url]


def dispose_engines() -> None:
    """Close every cached engine (tests, and a clean shutdown); the next use opens a new one."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
