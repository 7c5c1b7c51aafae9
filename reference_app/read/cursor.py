"""Opaque, tamper-evident page cursors.

A cursor is the position of the last order on a page, ``(placed_at, order_id)``, plus the
user it belongs to, signed with HMAC-SHA256 (truncated to 16 bytes) and base64url-encoded.
Keyset pagination on that position stays correct while new orders arrive (they sort before
it).

The body is compact and fixed-size: three big-endian signed 64-bit integers, the user id,
``placed_at`` in microseconds since the Unix epoch (UTC) and the order id. Packing it with
:mod:`struct` and signing with a keyed HMAC prepared once (``hmac.new(...).copy()`` per
cursor) costs a few microseconds, against ~18 us for the former JSON-and-ISO-8601 body
with a fresh HMAC each time. Cursors of the former format are rejected as invalid.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import struct

from reference_app.write.domain import OrderId, UserId

__all__ = ["CursorCodec", "InvalidCursorError", "Position"]

_SIGNATURE_BYTES = 16
_MIN_SECRET_BYTES = 16
_BODY = struct.Struct(">qqq")  # user id, placed_at (us since the epoch, UTC), order id
_CURSOR_BYTES = _SIGNATURE_BYTES + _BODY.size
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

Position = tuple[dt.datetime, OrderId]
"""Where a page ended: the last order's ``placed_at`` and id."""


class InvalidCursorError(ValueError):
    """A cursor is malformed, was tampered with, or belongs to another user."""


class CursorCodec:
    """Encodes and verifies cursors with a secret key.

    Args:
        secret: The signing key (keep it stable across restarts, or old cursors expire).
    """

    __slots__ = ("_mac",)

    def __init__(self, secret: bytes) -> None:
        """Use ``secret`` to sign cursors."""
        if len(secret) < _MIN_SECRET_BYTES:
            msg = "the cursor secret must be at least 16 bytes"
            raise ValueError(msg)
        # The key schedule is done once; each signature copies this keyed state.
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)

    def _sign(self, body: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(body)
        return mac.digest()[:_SIGNATURE_BYTES]

    def encode(self, user_id: UserId, position: Position) -> str:
        """Return the cursor of ``position`` on ``user_id``'s list."""
        placed_at, order_id = position
        body = _BODY.pack(user_id, (placed_at - _EPOCH) // _MICROSECOND, order_id)
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
        if len(raw) != _CURSOR_BYTES:
            raise InvalidCursorError("malformed cursor")
        signature, body = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        if not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidCursorError("invalid cursor")
        owner, placed_at_us, order_id = _BODY.unpack(body)
        if owner != user_id:
            raise InvalidCursorError("this cursor belongs to another user's list")
        try:
            placed_at = _EPOCH + placed_at_us * _MICROSECOND
        except OverflowError as exc:  # signed, but not by this codec's encode
            raise InvalidCursorError("malformed cursor") from exc
        return placed_at, OrderId(order_id)
