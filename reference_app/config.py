"""Settings from the environment: every variable starts with ``ORDERS_``.

- ``ORDERS_DATA_DIR``: where the embedded databases and the generated cursor key live
  (``./data``; created when something is stored there).
- ``ORDERS_WRITE_DATABASE_URL``: the write model (``sqlite:///<data dir>/write.db``).
- ``ORDERS_READ_DATABASE_URL``: the read models (``sqlite:///<data dir>/read.db``).
- ``ORDERS_PROJECTIONS``: a strategy per projection, e.g.
  ``order_summary=async,order_detail=sync``; projections left out are ``sync``. ``inline``
  keeps read models in the write database, so it needs both URLs equal.
- ``ORDERS_LOG_FORMAT``: ``console`` (the default) or ``json``.
- ``ORDERS_LOG_LEVEL``: ``debug``, ``info`` (the default), ``warning`` or ``error``.
- ``ORDERS_CURSOR_SECRET``: the key that signs page cursors (16 bytes or more). Without it,
  a key is generated once and kept in ``<data dir>/cursor_secret`` (mode 0600), so cursors
  survive restarts; required with PostgreSQL, where several servers must share one key.
- ``ORDERS_CONSISTENCY_TIMEOUT``: seconds a read sent with ``X-Consistency-Token`` waits for
  the read models at most (5).
- ``ORDERS_EMBEDDED_WORKER``: run ``async`` projections in a thread of each process that
  sends commands (``true``); ``false`` when ``python -m reference_app worker`` runs them.

``postgresql://`` URLs use psycopg 3. An unknown ``ORDERS_`` variable is an error (a typo
must not silently fall back to a default), and so is any bad value: :class:`SettingsError`
lists every problem at once, by variable name.
"""

from __future__ import annotations

import difflib
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.exc import ArgumentError

from cqrs_kit.projections import Strategy
from reference_app.read.projections import PROJECTION_NAMES

__all__ = ["ENV_PREFIX", "Settings", "SettingsError"]

ENV_PREFIX = "ORDERS_"
"""The prefix of every setting's environment variable."""

_SECRET_FILE = "cursor_secret"  # noqa: S105 - a file name, not a secret
_MIN_SECRET_LENGTH = 16


class SettingsError(ValueError):
    """The environment holds unknown variables or bad values.

    Attributes:
        problems: One line per problem, each naming its variable.
    """

    def __init__(self, problems: list[str]) -> None:
        """List ``problems``."""
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _normalized_url(value: str) -> str:
    try:
        url = sa.make_url(value)
    except ArgumentError:
        msg = "not a database URL (e.g. sqlite:///data/write.db or postgresql://host/db)"
        raise ValueError(msg) from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            msg = "in-memory SQLite cannot be shared between connections; give a file path"
            raise ValueError(msg)
    elif backend == "postgresql":
        if driver == "asyncpg":
            msg = "the app is synchronous: use postgresql:// (psycopg), not postgresql+asyncpg://"
            raise ValueError(msg)
        if "+" not in url.drivername:
            url = url.set(drivername="postgresql+psycopg")
    else:
        msg = f"unsupported database {backend!r}: use sqlite or postgresql"
        raise ValueError(msg)
    return url.render_as_string(hide_password=False)


def _masked(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


class Settings(BaseModel):
    """The app's configuration; build it with :meth:`from_env`.

    Attributes:
        data_dir: Where embedded databases and the generated cursor key live.
        write_database_url: The write model's database (SQLAlchemy URL, normalized).
        read_database_url: The read models' database.
        projections: The strategy of each projection (every projection is listed).
        log_format: ``console`` or ``json``.
        log_level: The lowest level logged.
        cursor_secret: The key that signs page cursors.
        consistency_timeout: Seconds a read-your-own-writes query waits at most.
        embedded_worker: Run ``async`` projections in a thread of the serving process.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    write_database_url: str
    read_database_url: str
    projections: Mapping[str, Strategy]
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    cursor_secret: SecretStr
    consistency_timeout: float = Field(default=5.0, gt=0, le=60)
    embedded_worker: bool = True

    @field_validator("write_database_url", "read_database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _normalized_url(value)

    @field_validator("cursor_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < _MIN_SECRET_LENGTH:
            msg = f"must be at least {_MIN_SECRET_LENGTH} bytes long"
            raise ValueError(msg)
        return value

    @field_validator("projections")
    @classmethod
    def _check_projections(cls, value: Mapping[str, Strategy]) -> Mapping[str, Strategy]:
        known = PROJECTION_NAMES
        unknown = sorted(set(value) - set(known))
        if unknown:
            msg = f"unknown projections {unknown}; known: {', '.join(known)}"
            raise ValueError(msg)
        return {name: value.get(name, Strategy.SYNC) for name in known}

    @model_validator(mode="after")
    def _check_inline(self) -> Settings:
        inline = sorted(n for n, s in self.projections.items() if s is Strategy.INLINE)
        if inline and self.read_database_url != self.write_database_url:
            msg = (
                f"{_env_name('projections')}: {inline} are inline, which keeps read models in "
                f"the write database; the queries read {_env_name('read_database_url')}, so set "
                f"it to the write database URL too, or use sync or async"
            )
            raise ValueError(msg)
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Hide database passwords (the secret is a ``SecretStr`` already)."""
        for name, value in super().__repr_args__():
            yield name, _masked(value) if name and name.endswith("_url") else value

    @property
    def cursor_key(self) -> bytes:
        """The cursor secret as bytes, for :class:`~reference_app.read.cursor.CursorCodec`."""
        return self.cursor_secret.get_secret_value().encode()

    @property
    def async_projections(self) -> list[str]:
        """The projections a worker applies in the background."""
        return [name for name, strategy in self.projections.items() if strategy is Strategy.ASYNC]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``ORDERS_*`` variables (``os.environ`` by default).

        Creates the data directory when a default SQLite database or the generated cursor
        key goes there, and the key file itself on first use.

        Args:
            environ: The variables to read, for tests; ``os.environ`` when omitted.

        Returns:
            The settings.

        Raises:
            SettingsError: A variable is unknown or has a bad value; lists them all.
        """
        env = dict(os.environ if environ is None else environ)
        problems = _unknown_variables(env)
        data_dir = Path(env.get(_env_name("data_dir"), "data")).expanduser().resolve()
        raw: dict[str, Any] = {"data_dir": data_dir}
        embedded = False
        for field in ("write_database_url", "read_database_url"):
            value = env.get(_env_name(field))
            if value is None:
                value = f"sqlite+pysqlite:///{data_dir / field.split('_')[0]}.db"
                embedded = True
            raw[field] = value
        raw["projections"] = _parse_strategies(env.get(_env_name("projections"), ""), problems)
        for field in ("log_format", "log_level", "consistency_timeout", "embedded_worker"):
            if _env_name(field) in env:
                raw[field] = env[_env_name(field)].strip().lower()
        secret = env.get(_env_name("cursor_secret"))
        if secret is None:
            if _any_postgresql(raw):
                problems.append(
                    f"{_env_name('cursor_secret')}: required with PostgreSQL (every server "
                    f"must sign cursors with the same key); set it to 32+ random characters"
                )
                secret = "x" * _MIN_SECRET_LENGTH  # placeholder, so other problems show too
            else:
                embedded = True
        try:
            if embedded:
                data_dir.mkdir(parents=True, exist_ok=True)
            raw["cursor_secret"] = secret if secret is not None else _stored_secret(data_dir)
        except OSError as exc:
            problems.append(f"{_env_name('data_dir')}: cannot use {data_dir}: {exc}")
            raw["cursor_secret"] = "x" * _MIN_SECRET_LENGTH
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_describe(exc, env))
        else:
            if not problems:
                return settings
        raise SettingsError(problems)


def _unknown_variables(env: Mapping[str, str]) -> list[str]:
    known = [_env_name(name) for name in Settings.model_fields]
    problems = []
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(known)}"
            problems.append(f"{name}: unknown setting{hint}")
    return problems


def _parse_strategies(text: str, problems: list[str]) -> dict[str, Strategy]:
    """Parse ``name=strategy,...``; a bad item is added to ``problems`` and left out."""
    strategies: dict[str, Strategy] = {}
    variable = _env_name("projections")
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name or not value:
            problems.append(f"{variable}: {item!r} is not name=strategy (e.g. order_summary=async)")
        elif name in strategies:
            problems.append(f"{variable}: {name} is given twice")
        elif value.lower() not in {strategy.value for strategy in Strategy}:
            problems.append(f"{variable}: {name}: unknown strategy {value!r}; use sync or async")
        else:
            strategies[name] = Strategy(value.lower())
    return strategies


def _any_postgresql(raw: Mapping[str, Any]) -> bool:
    for field in ("write_database_url", "read_database_url"):
        try:
            if sa.make_url(raw[field]).get_backend_name() == "postgresql":
                return True
        except ArgumentError:
            continue
    return False


def _stored_secret(data_dir: Path) -> str:
    """Read the generated cursor key, creating it (atomically, mode 0600) on first use."""
    path = data_dir / _SECRET_FILE
    if not path.exists():
        candidate = data_dir / f".{_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(candidate, path)  # atomic, and fails if a concurrent start won the race
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()


def _describe(exc: ValidationError, env: Mapping[str, str]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a model validator: its message names the variables
            problems.append(message)
            continue
        field = str(error["loc"][0])
        variable = _env_name(field)
        shown = "(hidden)" if field == "cursor_secret" else repr(env.get(variable, error["input"]))
        problems.append(f"{variable}: {message}, got {shown}")
    return problems
