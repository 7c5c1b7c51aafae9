"""API tokens: random, shown once, stored only as a SHA-256 hash.

A token has 256 bits of randomness, so a fast unsalted hash is enough: it cannot be guessed
or brute-forced, and a stolen ``api_tokens`` table holds no usable credential. To
authenticate a request, hash the presented token and look the hash up.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["hash_token", "new_token"]


def new_token() -> str:
    """Return a new random token (URL-safe text, 43 characters)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the value stored for ``token``: its SHA-256 digest, as 64 hex characters."""
    return hashlib.sha256(token.encode()).hexdigest()
