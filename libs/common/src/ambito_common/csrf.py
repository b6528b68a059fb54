"""CSRF protection for every HTML form (double-submit cookie).

Services do not share a session store, so the token lives in a cookie that
any service can read; a form must echo it in a hidden field. Requests carrying
``Authorization: Bearer`` and JSON bodies are not forms a foreign site can
forge (browsers never add that header, and a cross-site JSON POST needs a CORS
preflight that no service grants), so they are not checked.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, g, request

from .errors import DomainError

CSRF_COOKIE = "ambito_csrf"
CSRF_FIELD = "csrf_token"
FORM_MIMETYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}


class CsrfFailed(DomainError):
    status = 400
    title = "Modulo non valido"


def csrf_token() -> str:
    """The token for this browser, minted on first use and set as a cookie."""
    if "csrf_token" not in g:
        g.csrf_token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    return g.csrf_token


def init_csrf(app: Flask, *, secure_cookie: bool) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def _check() -> None:
        # A cross-site DELETE (like a JSON body) needs a CORS preflight no service grants,
        # and no HTML form can send one.
        if request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return
        if request.path.startswith("/api/"):
            # API clients send no form token. A foreign page cannot ride on a person's login
            # here: the identity cookie is SameSite=Lax, so browsers leave it off cross-site
            # POSTs, and public endpoints are keyed by an unguessable tracking code.
            return
        if request.mimetype not in FORM_MIMETYPES and request.mimetype != "":
            return
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = request.form.get(CSRF_FIELD, "")
        if not cookie or not hmac.compare_digest(cookie, sent):
            raise CsrfFailed("Il modulo è scaduto o non proviene da questo sito. "
                             "Ricarichi la pagina e invii di nuovo i dati.")

    @app.after_request
    def _set_cookie(response):  # type: ignore[no-untyped-def]
        token = g.get("csrf_token")
        if token and request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Lax",
                                secure=secure_cookie, path="/")
        return response
