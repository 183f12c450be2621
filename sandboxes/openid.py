"""The Xero sandbox's signing keys: RS256 JWTs with a `kid`, a JWKS, and key rotation.

Xero signs id_tokens (and its JWT access tokens) with RS256 and publishes the public keys at
https://identity.xero.com/.well-known/openid-configuration/jwks, named in its discovery
document; a relying party picks the key by the token's `kid`. Keys are made in memory when
first needed (no key file exists anywhere); `rotate()` publishes a new key beside the old one,
so tokens signed before the rotation still verify until `retire()` withdraws the old key.
UNVERIFIED: how long Xero publishes a key after it stops signing with it; the overlap here
lasts until a test retires it.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": self.kid,
                "e": _b64(numbers.e), "n": _b64(numbers.n)}


def _kid() -> str:
    return secrets.token_hex(16).upper()


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@lru_cache(maxsize=1)
def _first_private_key() -> rsa.RSAPrivateKey:
    """Every sandbox's first key, made once per process (a 2048-bit key takes ~50 ms; the
    tests start two sandboxes per test). Its kid is the sandbox's own, so a token of one
    sandbox still names a key the other does not publish; `rotate()` makes a fresh key."""
    return _private_key()


class SigningKeys:
    """The keys a sandbox signs with: the newest signs, every published one verifies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []

    def _current(self) -> SigningKey:
        with self._lock:
            if not self._keys:
                self._keys.append(SigningKey(_kid(), _first_private_key()))
            return self._keys[-1]

    @staticmethod
    def _new() -> SigningKey:
        return SigningKey(_kid(), _private_key())

    @property
    def current_kid(self) -> str:
        return self._current().kid

    def sign(self, claims: dict[str, Any]) -> str:
        key = self._current()
        return jwt.encode(claims, key.private, algorithm=ALGORITHM,
                          headers={"kid": key.kid, "typ": "JWT"})

    def rotate(self) -> str:
        """Start signing with a new key; the old ones stay published. Returns the new kid."""
        self._current()
        with self._lock:
            self._keys.append(self._new())
            return self._keys[-1].kid

    def retire(self, kid: str) -> None:
        """Withdraw a key that no longer signs: tokens it signed stop verifying."""
        with self._lock:
            if self._keys and self._keys[-1].kid == kid:
                raise ValueError("the signing key cannot be retired; rotate first")
            self._keys = [k for k in self._keys if k.kid != kid]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        self._current()
        with self._lock:
            return {"keys": [key.jwk() for key in self._keys]}
