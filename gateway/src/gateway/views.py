"""Pages and endpoints of the gateway: login, token refresh, logout, portal, health, OpenAPI index."""

from __future__ import annotations

import time
from urllib.parse import urlencode, urlsplit

import structlog
from ambito_common.db import db_session
from ambito_common.errors import InvalidInput, Unauthorized
from ambito_common.forms import build_form, load, parse_form
from ambito_common.identity import current_identity
from ambito_common.tasks import SERVICES
from ambito_common.web import COMMON_STATIC, secure_cookies
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
)

from .health import platform_health
from .models import User
from .portal import PUBLIC_SERVICES, areas_for, profile_label
from .runtime import Runtime
from .schemas import IdentitySchema, LoginSchema, TokenSchema
from .services import DEMO_ACCOUNTS, active_user, authenticate, identity_of

log = structlog.get_logger(__name__)

bp = Blueprint("gateway", __name__)

STATIC_MAX_AGE = 24 * 3600


def _runtime() -> Runtime:
    return current_app.extensions["runtime"]


@bp.after_request
def _no_store_pages(response: Response) -> Response:
    """Pages carry the user's name and a CSRF token: never from a cache, nor after logout via Back."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def safe_next(value: str | None) -> str:
    """A local path to go back to after login; anything pointing elsewhere becomes the portal."""
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(char) < 32 or ord(char) == 127 for char in value)):
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


@bp.get("/")
def portal() -> Response:
    identity = current_identity()
    user = _session_user() if identity is None else None
    if user is not None:
        # The token expired but the login has not: renew it here rather than show a logged-out portal.
        identity = g.identity = identity_of(user)
    profile = profile_label(identity, current_app.extensions["ambito"]) if identity else ""
    response = make_response(render_template("portal.html", areas=areas_for(identity), profile=profile,
                                             public_services=PUBLIC_SERVICES))
    if user is not None:
        _set_identity_cookie(response, _token_for(user))
    return response


@bp.get("/accessibilita")
def accessibility() -> str:
    return render_template("accessibility.html")


@bp.route("/accesso", methods=["GET", "POST"])
def login_page() -> tuple[str, int] | Response:
    next_path = safe_next(request.values.get("next"))
    errors: dict[str, list[str]] = {}
    failure = ""
    status = 200
    if request.method == "POST":
        try:
            schema = LoginSchema()
            data = load(schema, parse_form(schema, request.form))
            user = authenticate(db_session(), data["username"], data["password"])
        except InvalidInput as exc:
            errors, status = exc.errors, 422
        except Unauthorized as exc:
            log.info("login_failed", channel="page")
            failure, status = exc.detail, 401
        else:
            response = redirect(next_path, 303)
            _set_identity_cookie(response, _log_in(user))
            return response
    form = build_form(LoginSchema(), {"username": request.form.get("username", "")}, errors)
    demo_usernames = [account[0] for account in DEMO_ACCOUNTS] if _runtime().settings.platform.demo else []
    return render_template("login.html", form=form, failure=failure, next_path=next_path,
                           demo_usernames=demo_usernames), status


@bp.post("/auth/login")
def login_api() -> Response:
    data = load(LoginSchema(), request.get_json(silent=True))
    try:
        user = authenticate(db_session(), data["username"], data["password"])
    except Unauthorized:
        log.info("login_failed", channel="api")
        raise
    token = _log_in(user)
    response = jsonify(TokenSchema().dump({
        "access_token": token, "token_type": "Bearer", "expires_in": _runtime().settings.token_ttl_seconds,
        "roles": user.roles, "comune": user.comune}))
    _set_identity_cookie(response, token)
    return response


@bp.get("/auth/refresh")
def refresh() -> Response:
    """Where services send a person whose identity token expired: renew it from the login, or log in."""
    next_path = safe_next(request.args.get("next"))
    user = _session_user()
    if user is None:
        session.clear()
        return redirect("/accesso?" + urlencode({"next": next_path}))
    response = redirect(next_path)
    _set_identity_cookie(response, _token_for(user))
    return response


@bp.post("/auth/logout")
def logout() -> Response:
    if "user_id" in session:
        log.info("logout", user_id=session["user_id"])
    session.clear()
    response = redirect("/", 303)
    response.delete_cookie(_runtime().settings.platform.identity_cookie, path="/", httponly=True,
                           samesite="Lax", secure=secure_cookies(_runtime().settings.platform))
    return response


@bp.get("/auth/me")
def me() -> Response:
    identity = current_identity()
    if identity is None:
        raise Unauthorized("Accesso richiesto: presentare un token valido.")
    return jsonify(IdentitySchema().dump(identity))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    settings = _runtime().settings
    healthy, report = platform_health(_runtime().session_factory, settings.service_urls, settings.platform)
    response = jsonify(report)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if healthy else 503


@bp.get("/api/openapi.json")
def openapi_index() -> Response:
    return jsonify(services={name: f"/api/{name}/openapi.json" for name in ("gateway", *SERVICES)})


@bp.get("/static/<path:filename>")
def static(filename: str) -> Response:
    """The shared UI assets; in distributed mode nginx serves the same directory instead."""
    return send_from_directory(COMMON_STATIC, filename, max_age=STATIC_MAX_AGE)


def _session_user() -> User | None:
    """The operator of this browser's login, while the login lasts and the account is active."""
    login_at = session.get("login_at")
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    if not isinstance(login_at, int) or time.time() - login_at > lifetime:
        return None
    return active_user(db_session(), session.get("user_id"))


def _log_in(user: User) -> str:
    """Start the gateway session of an authenticated user; returns their first identity token."""
    db_session().commit()  # the last login time, and a password rehash if argon2 parameters changed
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["login_at"] = int(time.time())
    log.info("login", user_id=user.id, roles=user.roles)
    return _token_for(user)


def _token_for(user: User) -> str:
    return _runtime().issuer.issue(identity_of(user))


def _set_identity_cookie(response: Response, token: str) -> None:
    """The token as a cookie that lives exactly as long as the token, for every service's pages."""
    settings = _runtime().settings
    response.set_cookie(settings.platform.identity_cookie, token,
                        max_age=settings.token_ttl_seconds, path="/", httponly=True, samesite="Lax",
                        secure=secure_cookies(settings.platform))
