"""The database: one SQLAlchemy engine per URL, its schema under Alembic migrations, the tables.

A foundation like ``config``: it knows nothing of arenas or runs; the domains that keep records
(``genimg.arena``, later the index of training runs) use :func:`get_engine` and the tables in
:mod:`genimg.storage.tables`.
"""

from genimg.storage.engine import database_url, dispose_engines, get_engine, open_engine

__all__ = ["database_url", "dispose_engines", "get_engine", "open_engine"]
