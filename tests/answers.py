"""Comparing answers exactly: equal values of the same types, down to every field.

``==`` on views cannot tell a ``str`` status from an :class:`OrderStatus` member (a
``StrEnum``), ``Decimal("1.5")`` from ``Decimal("1.50")``, or a time in UTC from the same
instant at another offset. The views' constructors convert nothing, so tests that compare
the read models' answers with the baseline's use :func:`assert_identical`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec


def _parts(left: Any, right: Any, where: str) -> list[tuple[Any, Any, str]] | None:
    """The fields or items of two values of one type to compare in turn; ``None`` for a leaf."""
    if isinstance(left, msgspec.Struct):
        return [
            (getattr(left, name), getattr(right, name), f"{where}.{name}")
            for name in left.__struct_fields__
        ]
    if isinstance(left, (list, tuple)):
        return [
            (a, b, f"{where}[{index}]")
            for index, (a, b) in enumerate(zip(left, right, strict=False))
        ]
    return None


def difference(left: Any, right: Any, where: str = "answer") -> str | None:
    """Describe the first place where ``left`` and ``right`` differ, or return ``None``."""
    if type(left) is not type(right):
        return f"{where}: {type(left).__name__} {left!r} vs {type(right).__name__} {right!r}"
    parts = _parts(left, right, where)
    if parts is not None:
        if not isinstance(left, msgspec.Struct) and len(left) != len(right):
            return f"{where}: {len(left)} items vs {len(right)}"
        found = (difference(a, b, name) for a, b, name in parts)
        return next((text for text in found if text is not None), None)
    if isinstance(left, Decimal):
        same = left.as_tuple() == right.as_tuple()
    elif isinstance(left, dt.datetime):
        same = left == right and left.utcoffset() == right.utcoffset()
    else:
        same = left == right
    return None if same else f"{where}: {left!r} vs {right!r}"


def assert_identical(left: Any, right: Any, context: str = "") -> None:
    """Fail unless ``left`` and ``right`` are equal values of the same types, field by field."""
    found = difference(left, right)
    assert found is None, f"{context}: {found}" if context else found
