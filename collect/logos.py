"""The business's logo on the customer's portal: read from the books where the provider keeps
one (Xero's branding theme), else uploaded by the owner on the settings page (QuickBooks' API
serves none). Either way we keep the bytes and serve them from our own domain, and only a
checked PNG or JPEG of bounded size and dimensions is kept: never HTML, SVG or anything a
browser could run.

The books' logo is fetched by a job (jobs/tasks.refresh_logo) after a sync, at most once a day:
the address is remembered, so an unchanged logo is not downloaded again. An uploaded logo is
the owner's choice and the books do not replace it.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect import ledger
from connectors.base import Connector, ConnectorError
from rules.messages import Logo
from store.models import BusinessLogo, Organisation

log = logging.getLogger(__name__)

MAX_LOGO_BYTES = 1024 * 1024
MAX_LOGO_SIDE = 4000  # pixels: a header claiming more is refused before any browser decodes it
LOOK_AGAIN_AFTER = timedelta(days=1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
JPEG_MAGIC = b"\xff\xd8\xff"
# JPEG start-of-frame markers (the ones carrying the image's size): C0-CF but DHT, JPG, DAC.
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class LogoRefused(ValueError):
    """A file that is not kept as a logo; `code` names why (the page words it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _png_size(content: bytes) -> tuple[int, int] | None:
    if len(content) < 33 or content[12:16] != b"IHDR" or not content.endswith(PNG_END):
        return None
    width, height = struct.unpack(">II", content[16:24])
    return int(width), int(height)


def _jpeg_size(content: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(content):
        if content[at] != 0xFF:
            return None
        marker = content[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack(">H", content[at + 2:at + 4])
        if length < 2:
            return None
        if marker in JPEG_FRAMES:
            if at + 9 > len(content):
                return None
            height, width = struct.unpack(">HH", content[at + 5:at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def checked_logo(content: bytes) -> str:
    """The content type of a logo we keep (image/png or image/jpeg), judged by the file's own
    bytes, never by its name or the browser's word; LogoRefused otherwise."""
    if not content:
        raise LogoRefused("logo_missing")
    if len(content) > MAX_LOGO_BYTES:
        raise LogoRefused("logo_large")
    if content.startswith(PNG_MAGIC):
        size, content_type = _png_size(content), "image/png"
    elif content.startswith(JPEG_MAGIC):
        size, content_type = _jpeg_size(content), "image/jpeg"
    else:
        raise LogoRefused("logo_type")
    if size is None:
        raise LogoRefused("logo_type")
    if not (1 <= size[0] <= MAX_LOGO_SIDE and 1 <= size[1] <= MAX_LOGO_SIDE):
        raise LogoRefused("logo_dimensions")
    return content_type


def logo_of(session: Session, org_id: int) -> BusinessLogo | None:
    """The organisation's logo row if it has an image (a books row recording none: None)."""
    row = session.scalar(select(BusinessLogo).where(BusinessLogo.org_id == org_id))
    return row if row is not None and row.content else None


def logo_for(session: Session, org_id: int, portal_link: str | None) -> Logo | None:
    """The logo as a message of ours shows it (reminders, statements, the final demand and
    its PDF), None without one. Its address is the customer's own portal link's (our domain),
    versioned by the content so a new logo is not cached; no link, no address."""
    row = logo_of(session, org_id)
    if row is None or row.content is None or row.digest is None:
        return None
    url = f"{portal_link}/logo?v={row.digest[:16]}" if portal_link else None
    return Logo(content=row.content, url=url)


def _row(session: Session, org_id: int) -> BusinessLogo | None:
    return session.scalar(select(BusinessLogo).where(BusinessLogo.org_id == org_id))


def _keep(row: BusinessLogo, content: bytes | None, content_type: str | None) -> None:
    row.content, row.content_type = content, content_type
    row.digest = hashlib.sha256(content).hexdigest() if content else None


def upload(session: Session, org: Organisation, content: bytes, now: datetime) -> BusinessLogo:
    """The owner's own logo (LogoRefused, and nothing changed, for a file that is not one)."""
    content_type = checked_logo(content)
    row = _row(session, org.id) or BusinessLogo(org_id=org.id, source="upload")
    session.add(row)
    row.source, row.source_url, row.checked_at = "upload", None, None
    _keep(row, content, content_type)
    ledger.audit(session, org.id, "logo_uploaded", "The business's logo was uploaded", at=now,
                 data={"bytes": len(content), "content_type": content_type})
    return row


def remove(session: Session, org: Organisation, now: datetime) -> bool:
    """The uploaded logo taken away: the books' logo (if any) is read again after the next
    sync, and until then the portal shows the business's name alone."""
    row = _row(session, org.id)
    if row is None:
        return False
    session.delete(row)
    ledger.audit(session, org.id, "logo_removed", "The business's logo was removed", at=now,
                 data={})
    return True


def due_for_a_look(session: Session, org_id: int, now: datetime) -> bool:
    """Whether the books' logo should be looked at now: never looked at, or a day ago, and
    not replaced by the owner's own."""
    row = _row(session, org_id)
    if row is None:
        return True
    if row.source == "upload":
        return False
    return row.checked_at is None or row.checked_at + LOOK_AGAIN_AFTER <= now


def refresh_from_books(session: Session, org: Organisation, connector: Connector,
                       now: datetime) -> str:
    """Read the books' logo into our store: what happened, as a word (stored, unchanged, none,
    refused, uploaded, failed). A provider that fails changes nothing: the next sync's job
    asks again."""
    row = _row(session, org.id)
    if row is not None and row.source == "upload":
        return "uploaded"
    try:
        url = connector.logo_url()
        unchanged = url is not None and row is not None and url == row.source_url
        content = connector.download_logo(url, MAX_LOGO_BYTES) \
            if url is not None and not unchanged else None
    except ConnectorError as failure:
        log.warning("org %s: the books' logo was not read: %s", org.id, failure)
        return "failed"
    if row is None:
        row = BusinessLogo(org_id=org.id, source="books")
        session.add(row)
    row.checked_at = now
    if unchanged:
        return "unchanged"
    row.source_url = url  # a refused image is not fetched again until the address changes
    if url is None or content is None:
        if row.content:
            log.info("org %s: the books have no logo any more", org.id)
        _keep(row, None, None)
        return "none"
    try:
        content_type = checked_logo(content)
    except LogoRefused as refused:
        log.warning("org %s: the books' logo is not kept (%s)", org.id, refused.code)
        _keep(row, None, None)
        return "refused"
    _keep(row, content, content_type)
    log.info("org %s: the books' logo stored (%s, %d bytes)", org.id, content_type,
             len(content))
    return "stored"
