"""Login through the JSON API, identity tokens, the refresh of an expired token, logout."""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest
from ambito_common.errors import Unauthorized
from ambito_common.identity import ISSUER, Identity
from ambito_common.testing import fresh_postgres_database
from gateway.app import SESSION_COOKIE, create_app
from gateway.models import User
from sqlalchemy import select

IDENTITY_COOKIE = "ambito_identity"


def test_login_returns_a_token_every_service_can_verify(gateway_client, gateway_login, gateway_verifier):
    response = gateway_login(gateway_client, "clusone")

    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["roles"] == ["comune_operator"]
    assert body["comune"] == "clusone"
    identity = gateway_verifier.verify(body["access_token"])
    assert identity.username == "clusone"
    assert identity.roles == ("comune_operator",)
    assert identity.comune == "clusone"
    assert identity.display_name == "Operatore del Comune di Clusone (demo)"


def test_login_sets_the_session_and_identity_cookies(gateway_client, gateway_login):
    response = gateway_login(gateway_client, "protocollo")

    identity_cookie = gateway_client.get_cookie(IDENTITY_COOKIE)
    assert identity_cookie.value == response.get_json()["access_token"]
    assert identity_cookie.http_only and identity_cookie.same_site == "Lax"
    assert identity_cookie.path == "/" and identity_cookie.max_age == 600
    session_cookie = gateway_client.get_cookie(SESSION_COOKIE)
    assert session_cookie.http_only and session_cookie.same_site == "Lax"
    assert session_cookie.expires is not None
    lifetime = session_cookie.expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=7, minutes=59) < lifetime <= dt.timedelta(hours=8)


def test_admin_token_has_no_comune(gateway_client, gateway_login, gateway_verifier):
    body = gateway_login(gateway_client, "admin").get_json()

    assert body["comune"] is None
    identity = gateway_verifier.verify(body["access_token"])
    assert identity.roles == ("ambito_admin",) and identity.comune is None


@pytest.mark.parametrize("username", ["clusone", "nessuno"])
def test_wrong_credentials_get_one_generic_401(gateway_client, gateway_login, username):
    response = gateway_login(gateway_client, username, "sbagliata")

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "Nome utente o password non corretti."
    assert gateway_client.get_cookie(IDENTITY_COOKIE) is None
    assert gateway_client.get_cookie(SESSION_COOKIE) is None


def test_inactive_account_cannot_log_in(gateway_client, gateway_login, gateway_runtime):
    with gateway_runtime.session_factory.begin() as session:
        session.scalar(select(User).where(User.username == "clusone")).active = False

    assert gateway_login(gateway_client, "clusone").status_code == 401


def test_malformed_login_bodies_are_422(gateway_client):
    missing = gateway_client.post("/auth/login", json={"username": "admin"})
    assert missing.status_code == 422
    assert missing.mimetype == "application/problem+json"
    assert missing.get_json()["errors"] == {"password": ["Indichi la password."]}

    not_json = gateway_client.post("/auth/login", data="username=admin", content_type="application/json")
    assert not_json.status_code == 422

    wrong_type = gateway_client.post("/auth/login", json={"username": 3, "password": "demo"})
    assert wrong_type.get_json()["errors"] == {"username": ["Nome utente non valido."]}


def test_username_is_case_insensitive(gateway_client, gateway_login):
    assert gateway_login(gateway_client, "  Admin ").status_code == 200


def test_me_reads_the_bearer_token_or_the_cookie(gateway_app, gateway_login):
    with gateway_app.test_client() as browser:
        token = gateway_login(browser, "as.clusone").get_json()["access_token"]
        assert browser.get("/auth/me").get_json()["roles"] == ["social_worker"]

    with gateway_app.test_client() as script:
        assert script.get("/auth/me").status_code == 401
        me = script.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me == {"subject": me["subject"], "username": "as.clusone", "roles": ["social_worker"],
                  "comune": "clusone", "display_name": "Assistente sociale di Clusone (demo)"}


def test_refresh_renews_an_expired_token_from_the_session(gateway_client, gateway_login, gateway_runtime,
                                                          gateway_verifier):
    gateway_login(gateway_client, "protocollo")
    old = gateway_verifier.verify(gateway_client.get_cookie(IDENTITY_COOKIE).value)
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    expired = gateway_runtime.issuer.issue(old, now=an_hour_ago)
    gateway_client.set_cookie(IDENTITY_COOKIE, expired)
    with pytest.raises(Unauthorized):
        gateway_verifier.verify(expired)

    response = gateway_client.get("/auth/refresh?next=/protocollo/inbox%3Fpage%3D2")

    assert response.status_code == 302
    assert response.headers["Location"] == "/protocollo/inbox?page=2"
    renewed = gateway_client.get_cookie(IDENTITY_COOKIE).value
    assert gateway_verifier.verify(renewed) == old


def test_refresh_without_a_session_asks_to_log_in(gateway_client):
    response = gateway_client.get("/auth/refresh?next=/protocollo/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/accesso?next=%2Fprotocollo%2F"
    assert gateway_client.get_cookie(IDENTITY_COOKIE) is None


def test_refresh_refuses_a_login_older_than_the_session_lifetime(gateway_client, gateway_login):
    gateway_login(gateway_client, "protocollo")
    with gateway_client.session_transaction() as session:
        session["login_at"] = int(time.time()) - 8 * 3600 - 1

    response = gateway_client.get("/auth/refresh?next=/protocollo/")

    assert response.headers["Location"] == "/accesso?next=%2Fprotocollo%2F"


def test_refresh_refuses_a_deactivated_account(gateway_client, gateway_login, gateway_runtime):
    gateway_login(gateway_client, "clusone")
    with gateway_runtime.session_factory.begin() as session:
        session.scalar(select(User).where(User.username == "clusone")).active = False

    assert gateway_client.get("/auth/refresh?next=/").headers["Location"] == "/accesso?next=%2F"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "evil"])
def test_refresh_only_returns_to_local_paths(gateway_client, gateway_login, target):
    gateway_login(gateway_client, "admin")

    assert gateway_client.get("/auth/refresh", query_string={"next": target}).headers["Location"] == "/"


def test_logout_clears_both_cookies(gateway_client, gateway_login):
    gateway_login(gateway_client, "admin")
    gateway_client.get("/")  # the page that carries the logout form and its CSRF token
    csrf = gateway_client.get_cookie("ambito_csrf").value

    response = gateway_client.post("/auth/logout", data={"csrf_token": csrf})

    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert gateway_client.get_cookie(IDENTITY_COOKIE) is None
    assert gateway_client.get_cookie(SESSION_COOKIE) is None
    assert gateway_client.get("/auth/me").status_code == 401
    assert gateway_client.get("/auth/refresh?next=/").headers["Location"].startswith("/accesso")


def test_logout_needs_the_csrf_token(gateway_client, gateway_login):
    gateway_login(gateway_client, "admin")

    assert gateway_client.post("/auth/logout", data={}).status_code == 400
    assert gateway_client.get("/auth/me").status_code == 200


def test_tokens_name_the_gateway_as_issuer(gateway_client, gateway_login):
    token = gateway_login(gateway_client, "admin").get_json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == 600


@pytest.mark.postgres
def test_login_on_postgresql(gateway_environ, gateway_build, gateway_verifier):
    with fresh_postgres_database("gateway") as url:
        runtime = gateway_build(gateway_environ(GATEWAY_DATABASE_URL=url))
        assert runtime.session_factory.kw["bind"].dialect.name == "postgresql"
        app = create_app(runtime=runtime)
        with app.test_client() as client:
            response = client.post("/auth/login", json={"username": "clusone", "password": "demo"})
            assert response.status_code == 200
            identity = gateway_verifier.verify(response.get_json()["access_token"])
            assert isinstance(identity, Identity) and identity.comune == "clusone"
            wrong = client.post("/auth/login", json={"username": "clusone", "password": "x"})
            assert wrong.status_code == 401
            assert client.get("/auth/refresh?next=/protocollo/").headers["Location"] == "/protocollo/"
        runtime.session_factory.kw["bind"].dispose()
