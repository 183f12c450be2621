"""Passwords are hashed with scrypt at werkzeug's full cost unless the configuration names
another; the tests' cheaper setting never reaches a real deployment, and a hash made at either
cost signs its owner in under the other (each hash carries its own parameters)."""

from __future__ import annotations

import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.passwords import hash_password, password_method
from app.config import Config
from tests.integration import flows
from tests.integration.conftest import EMAIL, PASSWORD


def test_a_deployment_hashes_with_scrypt_at_full_cost() -> None:
    assert "PASSWORD_HASH_METHOD" not in vars(Config)  # nothing lowers it by default
    bare = Flask(__name__)
    with bare.app_context():
        assert password_method() == "scrypt"
        stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt:32768:8:1$")
    assert check_password_hash(stored, "correct horse battery")
    assert not check_password_hash(stored, "correct horse battery!")
    assert hash_password("x").startswith("scrypt:32768:8:1$")  # outside any app as well


def test_a_full_cost_hash_signs_in_under_the_tests_cheaper_setting(app, web) -> None:  # type: ignore[no-untyped-def]
    from store.db import db
    from store.models import User

    assert app.config["PASSWORD_HASH_METHOD"] == "scrypt:1024:8:1"
    with app.app_context():
        db.session.add(User(email=EMAIL, password_hash=generate_password_hash(PASSWORD)))
        db.session.commit()
    http = requests.Session()
    wrong = flows.sign_in(http, web.url, EMAIL, PASSWORD + "!")
    assert "Email or password is not right." in wrong.text
    landed = flows.sign_in(http, web.url, EMAIL, PASSWORD)
    assert landed.status_code == 200 and landed.url.endswith("/orgs"), landed.url
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == EMAIL)).one()
        assert user.password_hash.startswith("scrypt:32768:8:1$")  # kept as it was made
        db.session.remove()
