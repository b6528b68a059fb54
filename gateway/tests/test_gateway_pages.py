"""The login page and the portal, as a browser uses them."""

from __future__ import annotations

import html

import pytest
from gateway.app import SESSION_COOKIE, create_app
from gateway.runtime import Runtime
from gateway.settings import Settings

IDENTITY_COOKIE = "ambito_identity"


def _csrf(client) -> str:  # type: ignore[no-untyped-def]
    client.get("/accesso")
    return client.get_cookie("ambito_csrf").value


def _page(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.get_data(as_text=True))


def test_login_page_is_an_italian_form_with_csrf(gateway_client):
    response = gateway_client.get("/accesso?next=/protocollo/")

    assert response.status_code == 200
    page = _page(response)
    csrf = gateway_client.get_cookie("ambito_csrf")
    assert csrf.http_only
    assert f'name="csrf_token" value="{csrf.value}"' in page
    assert '<form method="post" action="/accesso"' in page
    assert '<label for="f-username" class="active">Nome utente' in page
    assert 'type="password" id="f-password" name="password" value="" autocomplete="current-password"' in page
    assert 'name="next" value="/protocollo/"' in page
    assert "Accesso operatori" in page and "Accedi" in page
    assert response.headers["Cache-Control"] == "no-store"


def test_login_form_without_csrf_is_refused(gateway_client):
    response = gateway_client.post("/accesso", data={"username": "admin", "password": "demo"})

    assert response.status_code == 400
    assert gateway_client.get_cookie(IDENTITY_COOKIE) is None


def test_login_form_logs_in_and_returns_to_next(gateway_client, gateway_verifier):
    response = gateway_client.post("/accesso", data={
        "csrf_token": _csrf(gateway_client), "username": "protocollo", "password": "demo",
        "next": "/protocollo/"})

    assert response.status_code == 303
    assert response.headers["Location"] == "/protocollo/"
    identity = gateway_verifier.verify(gateway_client.get_cookie(IDENTITY_COOKIE).value)
    assert identity.roles == ("protocol_officer",)
    assert gateway_client.get_cookie(SESSION_COOKIE) is not None


def test_login_form_ignores_a_foreign_next(gateway_client):
    response = gateway_client.post("/accesso", data={
        "csrf_token": _csrf(gateway_client), "username": "admin", "password": "demo",
        "next": "https://evil.example/"})

    assert response.headers["Location"] == "/"


def test_wrong_password_shows_the_generic_message(gateway_client):
    response = gateway_client.post("/accesso", data={
        "csrf_token": _csrf(gateway_client), "username": "admin", "password": "segreta-sbagliata"})

    assert response.status_code == 401
    page = _page(response)
    assert "Nome utente o password non corretti." in page
    assert 'name="username" value="admin"' in page
    assert "riepilogo-errori" not in page
    assert "segreta-sbagliata" not in page
    assert gateway_client.get_cookie(IDENTITY_COOKIE) is None


def test_missing_fields_are_marked_one_by_one(gateway_client):
    response = gateway_client.post("/accesso", data={
        "csrf_token": _csrf(gateway_client), "username": "", "password": ""})

    assert response.status_code == 422
    page = _page(response)
    assert '<a href="#f-username">Nome utente: Indichi il nome utente.</a>' in page
    assert '<a href="#f-password">Password: Indichi la password.</a>' in page
    assert 'id="f-password-error" class="invalid-feedback"><span class="d-block">Indichi la password.' in page
    assert page.count('aria-invalid="true"') == 2


def test_portal_for_visitors(gateway_client):
    page = _page(gateway_client.get("/"))

    assert "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve" in page
    assert '<a href="/intake/avvisi">Avvisi e domande</a>' in page
    assert '<a href="/intake/sad/nuova">' in page and '<a href="/intake/sportello">' in page
    assert 'href="/accesso"' in page
    assert "Modalità dimostrativa" in page
    assert "/auth/logout" not in page and "/protocollo/" not in page


def test_portal_without_demo_mode_has_no_banner(gateway_environ):
    runtime = Runtime.build(Settings.from_env(gateway_environ(AMBITO_DEMO="false")))
    runtime.migrate()

    with create_app(runtime=runtime).test_client() as client:
        assert "Modalità dimostrativa" not in _page(client.get("/"))
        assert "Utenti dimostrativi" not in _page(client.get("/accesso"))


@pytest.mark.parametrize(("username", "shown", "hidden"), [
    ("protocollo", ['<a href="/protocollo/">Protocollo</a>', "Addetto al protocollo"],
     ["/vouchers/budget", "/intake/sportello/agenda"]),
    ("clusone", ['<a href="/vouchers/budget">Buoni e budget</a>', '<a href="/vouchers/rimborsi">',
                 '<a href="/vouchers/buoni">', "Operatore comunale, Clusone"],
     ["/protocollo/", "/intake/servizi-sociali/sad", "/vouchers/assegnazioni"]),
    ("as.clusone", ['<a href="/intake/servizi-sociali/sad">Valutazioni e piani assistenziali</a>',
                    "Assistente sociale, Clusone"],
     ["/protocollo/", "/vouchers/budget"]),
    ("admin", ['<a href="/protocollo/">Protocollo</a>', "/vouchers/budget", "/vouchers/rimborsi",
               "/vouchers/buoni", "/vouchers/assegnazioni", "/intake/servizi-sociali/sad",
               "/intake/sportello/agenda"], []),
])
def test_portal_shows_the_areas_of_each_role(gateway_client, gateway_login, username, shown, hidden):
    gateway_login(gateway_client, username)

    page = _page(gateway_client.get("/"))

    assert all(text in page for text in shown)
    assert not any(text in page for text in hidden)
    assert 'action="/auth/logout"' in page and 'href="/accesso"' not in page


def test_portal_renews_an_expired_token_while_the_login_lasts(gateway_client, gateway_login,
                                                              gateway_verifier):
    gateway_login(gateway_client, "protocollo")
    gateway_client.delete_cookie(IDENTITY_COOKIE)

    page = _page(gateway_client.get("/"))

    assert "Ufficio protocollo (demo)" in page
    assert gateway_verifier.verify(gateway_client.get_cookie(IDENTITY_COOKIE).value).username == "protocollo"


def test_logout_from_the_portal(gateway_client, gateway_login):
    gateway_login(gateway_client, "admin")
    gateway_client.get("/")

    response = gateway_client.post("/auth/logout", data={"csrf_token": gateway_client.get_cookie(
        "ambito_csrf").value}, follow_redirects=True)

    page = _page(response)
    assert response.request.path == "/"
    assert 'href="/accesso"' in page and "/auth/logout" not in page


def test_accessibility_statement_linked_from_every_page_exists(gateway_client):
    portal = gateway_client.get("/").get_data(as_text=True)
    assert 'href="/accessibilita"' in portal
    page = gateway_client.get("/accessibilita")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<h1>Dichiarazione di accessibilità</h1>" in text
    assert "mailto:ambito@comune.clusone.bg.it" in text
