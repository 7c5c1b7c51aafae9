"""Opaque, tamper-evident page cursors.

A cursor is the position of the last order on a page, ``(placed_at, order_id)``, plus the
user it belongs to, signed with HMAC-SHA256 and base64url-encoded. Keyset pagination on
that position stays correct while new orders arrive (they sort before it).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json

from reference_app.write.domain import OrderId, UserId

__all__ = ["CursorCodec", "InvalidCursorError", "Position"]

_SIGNATURE_BYTES = 16
_MIN_SECRET_BYTES = 16

Position = tuple[dt.datetime, OrderId]
"""Where a page ended: the last order's ``placed_at`` and id."""


class InvalidCursorError(ValueError):
    """A cursor is malformed, was tampered with, or belongs to another user."""


class CursorCodec:
    """Encodes and verifies cursors with a secret key.

    Args:
        secret: The signing key (keep it stable across restarts, or old cursors expire).
    """

    def __init__(self, secret: bytes) -> None:
        """Use ``secret`` to sign cursors."""
        if len(secret) < _MIN_SECRET_BYTES:
            msg = "the cursor secret must be at least 16 bytes"
            raise ValueError(msg)
        self._secret = secret

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, user_id: UserId, position: Position) -> str:
        """Return the cursor of ``position`` on ``user_id``'s list."""
        placed_at, order_id = position
        body = json.dumps(
            [user_id, placed_at.isoformat(), order_id], separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(self._sign(body) + body).decode().rstrip("=")

    def decode(self, user_id: UserId, cursor: str) -> Position:
        """Return the position a cursor stands for.

        Raises:
            InvalidCursorError: It is malformed, tampered with, or another user's.
        """
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursorError("malformed cursor") from exc
        signature, body = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        if len(signature) < _SIGNATURE_BYTES or not hmac.compare_digest(
            signature, self._sign(body)
        ):
            raise InvalidCursorError("invalid cursor")
        try:
            owner, placed_at, order_id = json.loads(body)
            position = (dt.datetime.fromisoformat(placed_at), OrderId(int(order_id)))
        except (ValueError, TypeError) as exc:
            raise InvalidCursorError("malformed cursor") from exc
        if owner != user_id:
            raise InvalidCursorError("this cursor belongs to another user's list")
        return position
