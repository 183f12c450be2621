"""The business on the customer's portal: its logo read from the books where the provider keeps
one (Xero's branding theme, fetched by a job, kept by us, served from our domain as the PNG it
is, and shown by our own emails), uploaded by the owner where it keeps none (QuickBooks), the
name alone without one; bad files save nothing."""

from __future__ import annotations

import re
import struct
import zlib
from html import unescape
from typing import Any

import pytest
import requests
from sqlalchemy import select

from sandboxes.xero.branding import logo_png
from tests.integration.conftest import connect, run_jobs
from tests.integration.test_portal import form_of

pytestmark = pytest.mark.db

LOGO_IMG = re.compile(r'<img class="logo" src="([^"]+)"')


def portal_link(app, org_id: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The link of the organisation's first customer with an open invoice, and their name."""
    from collect import portal
    from store.db import db
    from store.models import Contact, Invoice

    with app.app_context():
        invoice = db.session.scalars(select(Invoice).where(
            Invoice.org_id == org_id, Invoice.status == "open", Invoice.contact_id.is_not(None))
            .order_by(Invoice.id)).first()
        contact = db.session.get(Contact, invoice.contact_id)
        link, name = portal.portal_url(db.session, contact), contact.name
        db.session.commit()
    assert link
    return link, name


def logo_row(app, org_id: int) -> Any:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import BusinessLogo

    with app.app_context():
        row = db.session.scalar(select(BusinessLogo).where(BusinessLogo.org_id == org_id))
        if row is not None:
            db.session.expunge(row)
        return row


def reminder_html(app, org_id: int, link: str, today) -> str:  # type: ignore[no-untyped-def]
    """Our own reminder email's HTML for the customer's first open invoice, as sent."""
    from collect import portal
    from collect.message_texts import reminder_message
    from store.db import db
    from store.models import Invoice, Organisation

    with app.app_context():
        contact = portal.contact_for_token(db.session, link.rsplit("/", 1)[1],
                                           app.config["SECRET_KEY"])
        invoice = db.session.scalars(select(Invoice).where(
            Invoice.contact_id == contact.id, Invoice.status == "open")
            .order_by(Invoice.id)).first()
        return reminder_message(db.session, db.session.get(Organisation, org_id), invoice,
                                "friendly", today, None, link).html


def png(width: int, height: int, trailer: bytes = b"") -> bytes:
    """A PNG whose header claims these dimensions (one row of pixels is enough to check)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4)) + trailer + chunk(b"IEND", b""))


def test_the_xero_logo_is_read_from_the_books_kept_and_served_as_a_png(  # type: ignore[no-untyped-def]
        app, web, clock, sandbox) -> None:
    from jobs import tasks

    box, _ = sandbox
    app.config["BASE_URL"] = web.url
    connected = connect(app, web, "xero")
    run_jobs(app)  # the first sync, and after it the logo's own job
    expected = box.tenant(connected.tenant_id).logo
    assert expected is not None and expected.startswith(b"\x89PNG")
    row = logo_row(app, connected.org_id)
    assert (row.source, row.content, row.content_type) == ("books", expected, "image/png")
    assert row.source_url.startswith(sandbox[1].url + "/logos/")

    link, name = portal_link(app, connected.org_id)
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and name in unescape(page.text)
    (src,) = LOGO_IMG.findall(page.text)
    assert src.startswith(link.removeprefix(web.url) + "/logo?v=")
    image = requests.get(web.url + unescape(src), timeout=10)
    assert image.status_code == 200 and image.content == expected
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert "object-src 'none'" in image.headers["Content-Security-Policy"]  # the app's own
    # Only through a link that lets someone in.
    assert requests.get(f"{web.url}/portal/not-a-link/logo", timeout=10).status_code == 404
    # Our own emails show it above their text, from our domain through the customer's link.
    html = reminder_html(app, connected.org_id, link, clock().date())
    assert f'<img src="{web.url}{unescape(src)}" alt="' in unescape(html)

    # Looked at again a day later at the earliest, and not downloaded again while the books
    # name the same image.
    with app.app_context():
        assert tasks.refresh_logo(connected.org_id) == "not due"
    clock.advance(days=1, minutes=1)
    with app.app_context():
        assert tasks.refresh_logo(connected.org_id) == "unchanged"

    # The logo taken off the branding theme: the portal shows the business's name only.
    box.tenant(connected.tenant_id).logo = None
    clock.advance(days=1, minutes=1)
    with app.app_context():
        assert tasks.refresh_logo(connected.org_id) == "none"
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and not LOGO_IMG.findall(page.text)
    assert 'class="business"' in page.text
    assert requests.get(web.url + unescape(src), timeout=10).status_code == 404
    assert "<img" not in reminder_html(app, connected.org_id, link, clock().date())


def test_a_quickbooks_owner_uploads_the_logo_and_bad_files_save_nothing(  # type: ignore[no-untyped-def]
        app, web, clock, qbo_sandbox) -> None:
    from jobs import tasks
    from store.db import db
    from store.models import AuditEvent

    clock.set(clock().replace(hour=18))  # 10:00 in California
    app.config["BASE_URL"] = web.url
    connected = connect(app, web, "quickbooks")
    run_jobs(app)
    with app.app_context():  # QuickBooks' API keeps no logo: the name alone
        assert tasks.refresh_logo(connected.org_id) == "not due"
    assert logo_row(app, connected.org_id).content is None
    link, _name = portal_link(app, connected.org_id)
    assert not LOGO_IMG.findall(requests.get(link, timeout=10).text)

    owner = connected.http
    settings = f"{web.url}/orgs/{connected.org_id}/settings"
    page = owner.get(settings)
    assert page.status_code == 200 and 'id="no-logo"' in page.text

    def upload(content: bytes, name: str = "logo.png",
               kind: str = "image/png") -> requests.Response:
        action, fields = form_of(owner.get(settings).text, "/settings/logo")
        return owner.post(web.url + action, data=fields,
                          files={"logo": (name, content, kind)})

    bad = {
        "an SVG that runs a script": (b'<svg xmlns="http://www.w3.org/2000/svg" '
                                      b'onload="alert(1)"/>', "not a PNG or JPEG image"),
        "HTML named .png": (b"<html><script>alert(1)</script></html>",
                            "not a PNG or JPEG image"),
        "a PNG cut short": (png(64, 64)[:-12], "not a PNG or JPEG image"),
        "a PNG claiming 20000 pixels": (png(20000, 10), "at most 4000 pixels"),
        "just over 1 MB": (png(64, 64, b"\x00" * (2**20)), "larger than 1 MB"),
        "a 3 MB file, refused before it is read": (png(64, 64, b"\x00" * (3 * 2**20)),
                                                   "larger than 1 MB"),
        "no file": (b"", "Please choose a PNG or JPEG file."),
    }
    for what, (content, message) in bad.items():
        answer = upload(content)
        assert answer.status_code == 200, what
        assert message in unescape(answer.text), what
        assert 'id="no-logo"' in answer.text, what
        row = logo_row(app, connected.org_id)
        assert row.content is None and row.source == "books", what

    good = logo_png("Our shop")
    saved = upload(good, "shop logo.PNG", "application/octet-stream")
    assert "The logo was saved" in saved.text and 'id="logo-now"' in saved.text
    row = logo_row(app, connected.org_id)
    assert (row.source, row.content, row.content_type) == ("upload", good, "image/png")
    (src,) = LOGO_IMG.findall(requests.get(link, timeout=10).text)
    image = requests.get(web.url + unescape(src), timeout=10)
    assert (image.content, image.headers["Content-Type"]) == (good, "image/png")
    own = owner.get(f"{settings}/logo")
    assert own.content == good and own.headers["X-Content-Type-Options"] == "nosniff"
    # The books do not replace the owner's choice.
    clock.advance(days=2)
    with app.app_context():
        assert tasks.refresh_logo(connected.org_id) == "not due"
        kinds = [e.kind for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == connected.org_id, AuditEvent.kind.like("logo_%")))]
    assert kinds == ["logo_uploaded"]
    # A JPEG replaces it; then the owner removes it and the portal shows the name alone.
    jpeg = (b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01"
            b"\x00\x01\x00\x00" + b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 30, 40, 1)
            + b"\x01\x11\x00" + b"\xff\xd9")
    assert "The logo was saved" in upload(jpeg, "logo.jpg", "image/jpeg").text
    assert logo_row(app, connected.org_id).content_type == "image/jpeg"
    action, fields = form_of(owner.get(settings).text, "/settings/logo")
    removed = owner.post(web.url + action, data={**fields, "remove": "1"})
    assert "The logo was removed." in removed.text and 'id="no-logo"' in removed.text
    assert logo_row(app, connected.org_id) is None
    assert not LOGO_IMG.findall(requests.get(link, timeout=10).text)
