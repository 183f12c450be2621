"""Practice view: every client book of an accountant, filtered and sorted."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.practice.services import SORTS, practice_access, practice_rows
from store import clock

blueprint = Blueprint("practice", __name__)


@blueprint.route("/practice")
@login_required
def index() -> str | Response:
    access = practice_access(current_user)
    if not access.allowed:
        if access.only_book is not None:
            return redirect(url_for("dashboard.show", org_id=access.only_book.id))
        if access.no_books:
            return redirect(url_for("organisations.index"))
        abort(404)
    query = request.args.get("q", "").strip()[:100]
    health = request.args.get("health", "")
    sort = request.args.get("sort", "overdue")
    return render_template("practice/index.html",
                           rows=practice_rows(current_user, clock.now(), query, health, sort),
                           q=query, health=health, sort=sort, sorts=SORTS)
