"""Who belongs to an organisation: invitations by email link with a role, and the read tokens
of the JSON API. Only hashes of links and tokens are stored."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import and_, func, select

from app.access import ROLES
from app.auth.sessions import end_every_session
from app.organisations.services import role_of
from collect import ledger
from collect.mail import send_email
from connectors.base import ConfigurationError, TransientError
from store.db import db
from store.models import ApiToken, Invitation, Membership, Organisation, User

log = logging.getLogger(__name__)
INVITATION_DAYS = 14
API_TOKEN_PREFIX = "dw_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class InvitationRefused(ValueError):
    """An invitation that cannot be made or used; the message is for the person."""


def members_of(org: Organisation) -> list[tuple[User, str]]:
    return [(user, role) for user, role in db.session.execute(
        select(User, Membership.role).join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org.id).order_by(User.email))]


def pending_invitations(org: Organisation, now: datetime) -> list[Invitation]:
    return list(db.session.scalars(select(Invitation).where(
        Invitation.org_id == org.id, Invitation.accepted_at.is_(None),
        Invitation.expires_at > now).order_by(Invitation.created_at.desc())))


def invite(org: Organisation, inviter: User, email: str, role: str,
           now: datetime) -> tuple[Invitation, str, bool]:
    """Make an invitation; returns it, its link (shown once) and whether it was emailed."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 255 or any(c.isspace() for c in email):
        raise InvitationRefused("Enter an email address.")
    if role not in ROLES or role == "owner":
        raise InvitationRefused("Choose admin, accountant or viewer.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation(org_id=org.id, email=email, role=role, token_hash=digest(token),
                            invited_by=inviter.id, created_at=now,
                            expires_at=now + timedelta(days=INVITATION_DAYS))
    db.session.add(invitation)
    ledger.audit(db.session(), org.id, "invited", f"{inviter.email} invited a new {role}", at=now,
                 data={"by": inviter.email, "role": role})
    db.session.commit()
    link = url_for("auth.invitation", token=token, _external=True)
    emailed = False
    if current_app.config.get("SMTP_HOST"):
        try:
            send_email(to=email, subject=f"Join {org.name} on Dunwell",
                       text=f"{inviter.email} invites you to {org.name} on Dunwell as {role}.\n\n"
                            f"Accept within {INVITATION_DAYS} days: {link}\n",
                       html=None, sender_name="Dunwell",
                       action_key=f"invitation:{invitation.id}")
            emailed = True
        except (ConfigurationError, TransientError) as exc:
            log.warning("org %s: invitation %s not emailed (%s)", org.id, invitation.id, exc)
    return invitation, link, emailed


def revoke_invitation(org: Organisation, revoker: User, invitation_id: int,
                      now: datetime) -> Invitation:
    """Withdraw an invitation not yet used: its link stops working at once."""
    invitation = db.session.scalar(select(Invitation).where(
        Invitation.org_id == org.id, Invitation.id == invitation_id,
        Invitation.accepted_at.is_(None)))
    if invitation is None:
        raise LookupError(invitation_id)
    db.session.delete(invitation)
    ledger.audit(db.session(), org.id, "invitation_revoked",
                 f"{revoker.email} withdrew the invitation of {invitation.email}", at=now,
                 data={"by": revoker.email, "email": invitation.email})
    db.session.commit()
    return invitation


def invitation_for(token: str, now: datetime) -> Invitation:
    invitation = db.session.scalar(select(Invitation).where(
        Invitation.token_hash == digest(token)))
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= now:
        raise InvitationRefused("This invitation has expired or was already used.")
    return invitation


def accept(invitation: Invitation, user: User, now: datetime) -> Organisation:
    if user.email.lower() != invitation.email:
        raise InvitationRefused(f"This invitation is for {invitation.email}.")
    membership = db.session.scalar(select(Membership).where(
        Membership.user_id == user.id, Membership.org_id == invitation.org_id))
    if membership is None:
        db.session.add(Membership(user_id=user.id, org_id=invitation.org_id,
                                  role=invitation.role))
    invitation.accepted_at = now
    ledger.audit(db.session(), invitation.org_id, "joined",
                 f"{user.email} joined as {invitation.role}", at=now,
                 data={"by": user.email, "role": invitation.role})
    db.session.commit()
    org = db.session.get(Organisation, invitation.org_id)
    assert org is not None
    return org


def _owners(org: Organisation) -> int:
    return db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.org_id == org.id, Membership.role == "owner")) or 0


def change_role(org: Organisation, changer: User, user_id: int, role: str,
                now: datetime) -> User:
    """Change a member's role. Nobody changes their own; only an owner grants or takes away
    the owner role; the last owner stays an owner. The activity log names both people."""
    if role not in ROLES:
        raise InvitationRefused("Unknown role.")
    membership = db.session.scalar(select(Membership).where(
        Membership.org_id == org.id, Membership.user_id == user_id))
    user = db.session.get(User, user_id)
    if membership is None or user is None:
        raise LookupError(user_id)
    if user_id == changer.id:
        raise InvitationRefused("You cannot change your own role: ask another owner.")
    if "owner" in (role, membership.role) and role_of(changer, org) != "owner":
        raise InvitationRefused("Only an owner can grant or take away the owner role.")
    if membership.role == "owner" and role != "owner" and _owners(org) <= 1:
        raise InvitationRefused("An organisation keeps at least one owner.")
    if membership.role == role:
        return user
    before, membership.role = membership.role, role
    ledger.audit(db.session(), org.id, "role_changed",
                 f"{changer.email} changed {user.email} from {before} to {role}", at=now,
                 data={"user_id": user_id, "by": changer.id, "from": before, "to": role,
                       "changer": changer.email, "member": user.email})
    db.session.commit()
    return user


def remove_member(org: Organisation, remover: User, user_id: int, now: datetime) -> User:
    """Take a person out of the organisation: the membership goes, and so do the API tokens
    they made for it (a token must not outlive its maker's access). The last owner stays;
    only an owner removes an owner. Every page looks the membership up on each request, so
    their next request in this organisation is 404; one removed from their last organisation
    is signed out everywhere as well."""
    membership = db.session.scalar(select(Membership).where(
        Membership.org_id == org.id, Membership.user_id == user_id))
    user = db.session.get(User, user_id)
    if membership is None or user is None:
        raise LookupError(user_id)
    if membership.role == "owner":
        if role_of(remover, org) != "owner":
            raise InvitationRefused("Only an owner can remove an owner.")
        if _owners(org) <= 1:
            raise InvitationRefused("An organisation keeps at least one owner.")
    tokens = list(db.session.scalars(select(ApiToken).where(
        ApiToken.org_id == org.id, ApiToken.created_by == user_id,
        ApiToken.revoked_at.is_(None))))
    for token in tokens:
        token.revoked_at = now
    db.session.delete(membership)
    db.session.flush()
    ended = 0
    if db.session.scalar(select(Membership.id).where(Membership.user_id == user_id)
                         .limit(1)) is None:
        ended = end_every_session(user_id)  # in no organisation now: signed out too
    ledger.audit(db.session(), org.id, "member_removed",
                 f"{remover.email} removed {user.email} ({membership.role})"
                 + (f"; {len(tokens)} API token(s) they made revoked" if tokens else ""),
                 at=now, data={"user_id": user_id, "role": membership.role,
                               "revoked_tokens": [t.id for t in tokens],
                               "remover": remover.email, "member": user.email})
    db.session.commit()
    log.info("org %s: member %s removed by %s, %d token(s) revoked, %d session(s) ended",
             org.id, user_id, remover.id, len(tokens), ended)
    return user


# -- API tokens ---------------------------------------------------------------------------


def api_tokens_of(org: Organisation) -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).where(
        ApiToken.org_id == org.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc())))


def new_api_token(org: Organisation, user: User, name: str, now: datetime) -> str:
    """A new read token for this organisation alone; the secret is shown once."""
    name = name.strip()[:100] or "API token"
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(org_id=org.id, name=name, token_hash=digest(secret),
                            created_by=user.id, created_at=now))
    ledger.audit(db.session(), org.id, "api_token", f"{user.email} made API token {name!r}",
                 at=now, data={"by": user.email, "name": name})
    db.session.commit()
    return secret


def revoke_api_token(org: Organisation, token_id: int, now: datetime) -> None:
    token = db.session.scalar(select(ApiToken).where(ApiToken.org_id == org.id,
                                                     ApiToken.id == token_id))
    if token is None:
        raise LookupError(token_id)
    token.revoked_at = now
    db.session.commit()


def organisation_of_token(secret: str, now: datetime) -> Organisation | None:
    if not secret.startswith(API_TOKEN_PREFIX):
        return None
    # A token works while the person who made it is still a member of its organisation.
    token = db.session.scalar(select(ApiToken).join(Membership, and_(
        Membership.user_id == ApiToken.created_by, Membership.org_id == ApiToken.org_id))
        .where(ApiToken.token_hash == digest(secret), ApiToken.revoked_at.is_(None)))
    if token is None:
        return None
    token.last_used_at = now
    db.session.commit()
    return db.session.get(Organisation, token.org_id)
