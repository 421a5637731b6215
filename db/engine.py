"""Engine creation and schema upgrades.

SQLite is opened with WAL, a busy timeout and foreign keys on, so that a crawl, `alerts send`
and a reader can share one file. PostgreSQL (`postgresql+psycopg://…`) works with the same models
and migrations. The schema is only ever created or changed by the versioned Alembic migrations in
`db/migrations/`, never by `create_all` on an existing database.

Deployed as a zipped egg (Scrapyd), the code cannot migrate: Alembic reads its scripts from a
directory. There `open_database` only checks that the schema is at the newest migration and
otherwise says how to create or upgrade it, so a crawl job never changes a shared schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:  # Alembic is imported only to migrate: a database at head never needs it
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: A long-running process's SQLite caches (`keep_caches_small`): pages per connection, in KiB,
#: and prepared statements per connection (SQLite's default 2,000 KiB, the driver's 128).
SMALL_PAGE_CACHE_KIB = 256
SMALL_STATEMENT_CACHE = 16
#: Values per `IN (…)` list: far under SQLite's and PostgreSQL's bound-parameter limits.
IN_LIST_MAX = 500
_T = TypeVar("_T")
_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
#: `scheme://user:PASSWORD@` — group 1 up to the colon, group 2 the password as written.
_USERINFO_PASSWORD = re.compile(r"(^[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:)([^/]*)@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&]*)", re.IGNORECASE)


class SchemaNotReady(RuntimeError):
    """The database has no fdawatch schema, or not the newest one, and this code cannot migrate."""


class NoDatabase(LookupError):
    """Opened only to read, the database does not exist or holds no fdawatch history yet."""


def in_batches(values: Sequence[_T], size: int = IN_LIST_MAX) -> Iterator[Sequence[_T]]:
    """`values` in slices of `size`, so a query over thousands of ids stays a few statements."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def display_url(url: str) -> str:
    """The database URL as it may be printed or logged: any password in it as `***`.

    By pattern, not by parsing, so a URL SQLAlchemy cannot parse (a bad port) or splits oddly
    (an unencoded `@` in the password) is masked all the same; `?password=` too.
    """
    url = _USERINFO_PASSWORD.sub(r"\1***@", url)
    return _QUERY_PASSWORD.sub(r"\1***", url)


def hide_password(text: str, url: str) -> str:
    """`text` (an error message) with the URL, and its password in any spelling, masked.

    A password shorter than 4 characters is masked inside the URL only (replacing every "pw"
    in a message would garble it).
    """
    text = text.replace(url, display_url(url))
    secrets = [found.group(2) for found in _USERINFO_PASSWORD.finditer(url)]
    secrets += [found.group(2) for found in _QUERY_PASSWORD.finditer(url)]
    for raw in secrets:
        for secret in {raw, unquote(raw)}:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return text


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for in-memory, `file:` URIs and other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    database = parsed.database or ""
    return None if database in ("", ":memory:") else Path(database)


def make_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite, the folder is created and the pragmas are set."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory and not parsed.query.get("uri"):  # a `file:` URI names no folder to make
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        poolclass=StaticPool if in_memory else None,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if not in_memory:  # SQLAlchemy issues BEGIN itself (below), not the driver
            dbapi_connection.isolation_level = None

    if in_memory:  # one connection shared by a test's threads: the driver's BEGIN suffices
        return engine
    read_only = parsed.query.get("mode") == "ro"

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:  # type: ignore[no-untyped-def]
        # A write lock from the start: two processes recording the same edit then run one after
        # the other instead of both reading the old version (a doubled change and alert) or one
        # failing with "database is locked" when its read snapshot turns stale.
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def keep_caches_small(engine: Engine) -> None:
    """Give a process that runs for weeks small SQLite caches, so its memory stops growing early.

    Each SQLite connection keeps up to 2 MB of database pages and the driver keeps the last 128
    distinct statements prepared (every length of an `IN (…)` list is another one). Both are
    bounded, but the daemon, which only reads a little and sends, fills them over hours: a
    145-minute soak of issue 21 saw its SQLite memory grow 0.7 → 3.1 MB after the first ten
    minutes, most of it page cache. With 256 KiB and 16 statements it stopped at ~0.8 MB (two
    connections) within half an hour; the pages it reads again come from the operating system's
    file cache instead. Connections already open are closed (call this before other threads use
    the engine). PostgreSQL and an in-memory database (whose one connection holds all of it) are
    left alone.
    """
    if engine.dialect.name != "sqlite" or isinstance(engine.pool, StaticPool):
        return

    @event.listens_for(engine, "do_connect")
    def _few_statements(_dialect, _record, _cargs, cparams) -> None:  # type: ignore[no-untyped-def]
        cparams["cached_statements"] = SMALL_STATEMENT_CACHE

    @event.listens_for(engine, "connect")
    def _few_pages(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA cache_size=-{SMALL_PAGE_CACHE_KIB}")
        cursor.close()

    engine.dispose()


def alembic_config() -> Config:
    """The Alembic configuration, built in code: the project ships no alembic.ini."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema of `engine`'s database to `revision` (idempotent)."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def can_migrate() -> bool:
    """Whether the migration scripts are files on disk (not inside a zipped egg)."""
    return (MIGRATIONS / "env.py").is_file()


def head_revision() -> str:
    """The newest migration's revision, read from the package (so also from inside an egg)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    versions = resources.files("db").joinpath("migrations").joinpath("versions")
    for script in versions.iterdir():
        if script.name.endswith(".py"):
            text = script.read_text(encoding="utf-8")
            revisions.update(_REVISION.findall(text))
            parents.update(_DOWN_REVISION.findall(text))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"db/migrations/versions must have exactly one head, found {heads}")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at (None: no fdawatch schema yet)."""
    with engine.connect() as connection:  # Alembic's own table, read without importing Alembic
        if not inspect(connection).has_table("alembic_version"):
            return None
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    if len(versions) > 1:
        raise RuntimeError(f"alembic_version holds several revisions: {versions}")
    return versions[0][0] if versions else None


def check_at_head(engine: Engine) -> None:
    """Raise `SchemaNotReady`, saying what to run, unless the schema is at the newest migration."""
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    state = "has no fdawatch schema" if current is None else f"is at migration {current}"
    raise SchemaNotReady(
        f"the database {where} {state}, but this deployment needs migration {head} and cannot "
        "migrate from inside a zipped egg: run `fdawatch status` (to upgrade it) or `fdawatch "
        "crawl` (to create it) once with FDAWATCH_DATABASE_URL set to it, from an installed "
        "fdawatch of the same version; then schedule the crawl again"
    )


def open_database(url: str, *, create: bool = True) -> Engine:
    """An engine whose schema is at the newest migration (migrated here when possible).

    `create=False` is for commands that only read: a database that does not exist (no SQLite
    file) or holds no fdawatch schema raises `NoDatabase` instead of being created, so a wrong
    path is not answered with an empty history. An older schema is still upgraded.
    """
    if not create:
        file = sqlite_file(url)
        if file is not None and not file.is_file():
            raise NoDatabase(f"no such file: {file}")
        if file is not None and file.stat().st_size == 0:  # opening would make it a database
            raise NoDatabase("it holds no fdawatch history")
    engine = make_engine(url)
    try:
        current = current_revision(engine)
        if not create and current is None:
            raise NoDatabase("it holds no fdawatch history")
        if can_migrate():
            if current != head_revision():  # a cheap check; most opens stop here
                upgrade(engine)
        else:
            check_at_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
