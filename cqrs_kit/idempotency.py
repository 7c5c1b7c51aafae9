"""Idempotency keys: a repeated command returns its first result and changes nothing.

A command carries a key either as a field named ``idempotency_key`` or in the dispatch
metadata (``send(cmd, metadata={"idempotency_key": key})``, e.g. from an HTTP
``Idempotency-Key`` header). The key, a fingerprint of the command and its JSON-encoded
result are stored in the command's own transaction. The key row is inserted *before* the
handler runs, so a racing repeat blocks on the primary key until the first commits, then
fails and retries, and the retry finds the stored result.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from cqrs_kit.eventlog import metadata
from cqrs_kit.exceptions import IdempotencyKeyReusedError
from cqrs_kit.messages import Command, result_type_of

if TYPE_CHECKING:
    from cqrs_kit.context import DispatchContext

__all__ = ["IdempotencyStore", "idempotency_key_of", "idempotency_keys"]

METADATA_KEY = "idempotency_key"

idempotency_keys = sa.Table(
    "cqrs_idempotency_keys",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("command_type", sa.String(200), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("result", sa.JSON(), nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


@functools.cache
def _has_key_field(command_type: type[Command[Any]]) -> bool:
    return METADATA_KEY in command_type.model_fields


def idempotency_key_of(command: Command[Any], ctx: DispatchContext) -> str | None:
    """The command's idempotency key: its ``idempotency_key`` field, else the metadata's."""
    key = getattr(command, METADATA_KEY) if _has_key_field(type(command)) else None
    if key is None and ctx._metadata is not None:
        key = ctx._metadata.get(METADATA_KEY)
    return None if key is None else str(key)


@functools.cache
def _adapter(command_type: type[Command[Any]]) -> TypeAdapter[Any]:
    return TypeAdapter(result_type_of(command_type))


def _fingerprint(command: Command[Any]) -> str:
    body = command.model_dump_json(exclude={METADATA_KEY})
    return hashlib.sha256(f"{type(command).__qualname__}:{body}".encode()).hexdigest()


class IdempotencyStore:
    """Reads and writes idempotency keys with statements built once."""

    def __init__(self, table: sa.Table = idempotency_keys) -> None:
        """Use ``table`` (the default lives in :data:`cqrs_kit.eventlog.metadata`)."""
        self.table = table
        self._select = sa.select(table.c.command_type, table.c.fingerprint, table.c.result).where(
            table.c.key == sa.bindparam("key")
        )
        self._insert = sa.insert(table)
        self._update = (
            sa.update(table)
            .where(table.c.key == sa.bindparam("claimed_key"))
            .values(result=sa.bindparam("result"))
        )

    def lookup_statement(self) -> sa.Select[Any]:
        """The statement finding a key (parameter ``key``)."""
        return self._select

    def decode(self, key: str, command: Command[Any], row: Any) -> Any:
        """Return the stored result of ``row`` for ``command``.

        Raises:
            IdempotencyKeyReusedError: The key was stored for a different command.
        """
        if row.fingerprint != _fingerprint(command):
            msg = (
                f"idempotency key {key!r} was already used for a different "
                f"{row.command_type} command; use a new key for a new command"
            )
            raise IdempotencyKeyReusedError(msg, key=key)
        return _adapter(type(command)).validate_python(row.result)

    def claim_params(self, key: str, command: Command[Any]) -> dict[str, Any]:
        """The parameters claiming ``key`` for ``command`` (result still empty)."""
        return {
            "key": key,
            "command_type": type(command).__qualname__,
            "fingerprint": _fingerprint(command),
            "result": None,
            "recorded_at": dt.datetime.now(dt.UTC),
        }

    def result_params(self, key: str, command: Command[Any], result: Any) -> dict[str, Any]:
        """The parameters storing ``result`` under the claimed ``key``."""
        return {
            "claimed_key": key,
            "result": _adapter(type(command)).dump_python(result, mode="json"),
        }

    @property
    def claim_statement(self) -> sa.Insert:
        """The statement claiming a key."""
        return self._insert

    @property
    def result_statement(self) -> sa.Update:
        """The statement storing the result of a claimed key."""
        return self._update
