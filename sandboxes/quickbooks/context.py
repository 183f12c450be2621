"""The sandbox behind the request being answered. It is kept on its app (`app.extensions`),
never in a module, so that several sandboxes serve side by side in one process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from sandboxes.quickbooks.sandbox import QuickBooksSandbox

EXTENSION = "quickbooks_sandbox"


def current() -> QuickBooksSandbox:
    """The sandbox whose app is answering this request."""
    box: QuickBooksSandbox = current_app.extensions[EXTENSION]
    return box
