"""The keys that seal what Dunwell keeps secret (OAuth tokens, SMTP and Twilio passwords): one
vault per application, made from TOKEN_ENCRYPTION_KEYS."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class TokenVault:
    """MultiFernet: the first key encrypts; every key decrypts, so keys can rotate."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise RuntimeError(
                "TOKEN_ENCRYPTION_KEYS is not set: generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError(
                "a stored token cannot be decrypted with the configured keys"
            ) from exc


def token_vault() -> TokenVault:
    vault = current_app.extensions.get("dunwell_vault")
    if vault is None:
        vault = TokenVault(current_app.config["TOKEN_ENCRYPTION_KEYS"])
        current_app.extensions["dunwell_vault"] = vault
    return vault
