"""Branding themes: GET /BrandingThemes and /BrandingThemes/{id}, and the logo image a theme's
`LogoUrl` points to.

Shapes follow the Accounting API's description (specs/xero/xero_accounting.yaml: BrandingTheme
and the examples of GET /BrandingThemes): every organisation has the "Standard" theme, the
default (SortOrder 0, Type INVOICE). A tenant with a logo (`Tenant.logo`, PNG bytes) has it on
that theme as `LogoUrl`; a tenant without one has no `LogoUrl` at all, as the description's
examples show a theme without it.

UNVERIFIED: where `LogoUrl` points on Xero and how that host answers. The description says only
"the location of the image file used as the logo on this branding theme"; searched Xero's
developer pages, xero-python's model and issue threads without finding an example URL. Here it
is this sandbox's own address, `/logos/<tenant>/<theme>.png`, served without a token (as an
image host serves a public image) with `Content-Type: image/png`.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from hashlib import sha256
from typing import Any

from flask import Blueprint, Response, request

from sandboxes.wire import json_response as _json
from sandboxes.xero.api import API, accounting, envelope
from sandboxes.xero.books import Tenant
from sandboxes.xero.context import current
from sandboxes.xero.errors import not_found
from sandboxes.xero.formats import ms_date

bp = Blueprint("xero_branding", __name__)


def theme_id(t: Tenant) -> str:
    """The Standard theme's id: fixed per tenant."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-sandbox/{t.tenant_id}/branding/standard"))


def _themes(t: Tenant) -> list[dict[str, Any]]:
    theme: dict[str, Any] = {"BrandingThemeID": theme_id(t), "Name": "Standard",
                             "Type": "INVOICE", "SortOrder": 0,
                             "CreatedDateUTC": ms_date(t.created)}
    if t.logo is not None:
        theme["LogoUrl"] = f"{request.host_url}logos/{t.tenant_id}/{theme_id(t)}.png"
    return [theme]


@bp.get(f"{API}/BrandingThemes")
def branding_themes() -> Response:
    return accounting(lambda t: _json(envelope("BrandingThemes", _themes(t))))


@bp.get(f"{API}/BrandingThemes/<branding_theme_id>")
def branding_theme(branding_theme_id: str) -> Response:
    def handle(t: Tenant) -> Response:
        found = [theme for theme in _themes(t)
                 if theme["BrandingThemeID"] == branding_theme_id.lower()]
        if not found:
            raise not_found()
        return _json(envelope("BrandingThemes", found))
    return accounting(handle)


@bp.get("/logos/<tenant_id>/<name>.png")
def logo(tenant_id: str, name: str) -> Response:
    box = current()
    with box.lock:
        tenant = box.tenants_by_id.get(tenant_id)
        image = tenant.logo if tenant is not None and name == theme_id(tenant) else None
    if image is None:
        return Response("Not found", 404, mimetype="text/plain")
    return Response(image, mimetype="image/png", headers={
        "Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


def logo_png(name: str, size: int = 96) -> bytes:
    """A business's logo for the demo: a disc in a colour of its name, on transparent ground,
    as a PNG (written out by hand: the sandbox needs no image library)."""
    red, green, blue = sha256(name.encode()).digest()[:3]
    middle, radius = (size - 1) / 2, size * 0.45
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            inside = (x - middle) ** 2 + (y - middle) ** 2 <= radius ** 2
            row += bytes((red, green, blue, 255)) if inside else bytes(4)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))
