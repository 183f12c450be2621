"""What never leaves the process in a log line or an error report: secrets (tokens, passwords,
keys, signatures, cookies), email addresses and message bodies. The logs and the error reports
share these rules, so what one hides the other hides too.

Values are scrubbed by their field's name (`access_token`, `password`, `email`, `body`, ...) and
free text by its shape (an email address, a bearer token, a JWT, `token=...` in a query). The
first line of defence is not to log such things; this is the second.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

# A field whose name contains one of these never shows its value.
SENSITIVE_NAME = re.compile(
    r"pass|secret|token|auth|cookie|session|signature|credential|api_?key|private|dsn|csrf"
    r"|email|e_mail|phone|mobile|body|html|subject|message_text|address",
    re.IGNORECASE)

_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # JSON Web Tokens (id tokens, Xero's access tokens): three base64url parts.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # A secret in a URL's query or a form body (key=value), and in JSON ("key": "value").
    (re.compile(r"(?i)\b(access_token|refresh_token|id_token|client_secret|password|"
                r"code_verifier|code|token)=[^&\s\"']+"), r"\1=" + REDACTED),
    (re.compile(r"(?i)(\"(?:access_token|refresh_token|id_token|client_secret|password)\""
                r"\s*:\s*)\"[^\"]*\""), r'\1"' + REDACTED + '"'),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
)


def scrub_text(text: str) -> str:
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def scrub_value(name: str, value: Any, depth: int = 0) -> Any:
    """`value` as it may be shown under the field `name` (mappings and lists walked)."""
    if SENSITIVE_NAME.search(name) and not name.endswith("_id") and value not in (None, ""):
        return REDACTED
    if depth > 8:
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {str(k): scrub_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(name, item, depth + 1) for item in value]
    return value
