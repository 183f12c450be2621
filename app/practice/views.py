"""Practice view: every client book of an accountant, filtered and sorted."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user, login_required

from app import clock
from app.practice.services import SORTS, practice_rows

blueprint = Blueprint("practice", __name__)


@blueprint.route("/practice")
@login_required
def index() -> str:
    query = request.args.get("q", "").strip()[:100]
    health = request.args.get("health", "")
    sort = request.args.get("sort", "overdue")
    return render_template("practice/index.html",
                           rows=practice_rows(current_user, clock.now(), query, health, sort),
                           q=query, health=health, sort=sort, sorts=SORTS)
