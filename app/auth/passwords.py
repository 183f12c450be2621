"""Passwords: how they are hashed and checked."""

from __future__ import annotations

import functools

from flask import current_app, has_app_context
from werkzeug.security import check_password_hash, generate_password_hash


def password_method() -> str:
    """werkzeug's scrypt at its own cost (N=2**15, r=8, p=1: ~0.15 s of CPU a hash) unless
    PASSWORD_HASH_METHOD names another; the tests name a cheaper N, since they sign in
    thousands of times. A stored hash carries its own parameters, so either checks either."""
    if has_app_context():
        return str(current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))
    return "scrypt"


@functools.cache
def _dummy_hash(method: str) -> str:
    """Compared against when the email is unknown, so both paths cost the same time."""
    return generate_password_hash("not-a-real-password", method=method)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=password_method())


def check_no_password(password: str) -> None:
    """The work a wrong password costs, done for an unknown email too."""
    check_password_hash(_dummy_hash(password_method()), password)
