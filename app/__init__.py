"""Dunwell's web application: create_app() only wires things together."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template

from app.api.views import blueprint as api
from app.auth.views import blueprint as auth
from app.commands import register
from app.config import INSTANCE_DIR, Config
from app.connections.views import blueprint as connections
from app.customers.views import blueprint as customers
from app.dashboard.views import blueprint as dashboard
from app.events import init_events
from app.extensions import babel, csrf, init_database, login_manager
from app.health import init_operations
from app.languages import init_languages
from app.organisations.members_views import blueprint as members
from app.organisations.views import blueprint as organisations
from app.payments.views import pages as card_payments
from app.payments.views import webhook as stripe_webhooks
from app.portal.collector import blueprint as portal_admin
from app.portal.collector import portal_activity
from app.portal.views import blueprint as portal
from app.practice.views import blueprint as practice
from app.security import init_security
from app.settings.views import blueprint as settings
from app.setup.views import blueprint as setup
from app.sms.views import blueprint as sms_webhooks
from app.sms.views import pages as sms_settings
from app.webhooks.views import WebhookDispatcher
from app.webhooks.views import blueprint as webhooks
from collect.providers import PROVIDER_NAMES


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(Config)
    if overrides:
        app.config.update(overrides)
    if not app.config["SECRET_KEY"]:
        raise RuntimeError("SECRET_KEY is not set (the demo writes one under instance/)")
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Workers and the web process share one file: wait for a lock rather than fail.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    init_security(app)  # CSP nonce, HSTS, no-store, the sign-in limit

    # Provider webhooks answered in front of Flask's request machinery (see the class).
    app.wsgi_app = WebhookDispatcher(app, app.wsgi_app)  # type: ignore[method-assign]
    init_operations(app)  # logs, error reports, request ids and metrics, /healthz, /readyz
    return app


def register_extensions(app: Flask) -> None:
    init_database(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."

    init_languages(app, babel)
    init_events(app)


def register_blueprints(app: Flask) -> None:

    app.register_blueprint(auth)
    app.register_blueprint(organisations)
    app.register_blueprint(connections)
    app.register_blueprint(customers)
    app.register_blueprint(csrf.exempt(webhooks))  # signed by the provider, not a form

    app.register_blueprint(csrf.exempt(sms_webhooks))  # signed by Twilio, not a form
    app.register_blueprint(sms_settings)
    app.register_blueprint(csrf.exempt(stripe_webhooks))  # signed by Stripe, not a form
    app.register_blueprint(card_payments)

    for blueprint in (settings, dashboard, members, practice, api, setup):
        app.register_blueprint(blueprint)

    app.register_blueprint(portal)  # the customer's, public: its signed link is the key
    app.register_blueprint(portal_admin)
    app.jinja_env.globals["portal_activity"] = portal_activity
    app.jinja_env.globals["PROVIDER_NAMES"] = PROVIDER_NAMES  # for labels in templates


def register_errorhandlers(app: Flask) -> None:
    def render_error(error: Any) -> tuple[str, int]:
        code = getattr(error, "code", 500)
        return render_template("error.html", code=code,
                               message=getattr(error, "description", "")), code

    for code in (400, 403, 404, 405, 500):
        app.errorhandler(code)(render_error)


def register_commands(app: Flask) -> None:

    register(app)
