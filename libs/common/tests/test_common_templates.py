"""The shared layout, error page and form macros, rendered by a small Flask app the way services do.

The app is built by ``create_service_app`` (template loader chain over
COMMON_TEMPLATES, CSRF, identity tokens, error handlers), with two test pages
of its own in front and the common static dir; nothing of ours is stubbed.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin

import lxml.html
import pytest
from ambito_common.csrf import CSRF_COOKIE
from ambito_common.db import make_engine, make_session_factory
from ambito_common.errors import InvalidInput, NotFound
from ambito_common.forms import Confirmation, FormSchema, build_form, load, parse_form
from ambito_common.identity import (
    COMUNE_OPERATOR,
    PROTOCOL_OFFICER,
    Identity,
    TokenIssuer,
    ensure_keypair,
)
from ambito_common.settings import platform_settings
from ambito_common.testing import REPO_ROOT, require
from ambito_common.web import COMMON_STATIC, COMMON_TEMPLATES, create_service_app
from flask import Flask, flash, redirect, render_template, request
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader
from marshmallow import fields, validate
from werkzeug.test import TestResponse

IDENTITY_COOKIE = "ambito_identity"
VENDOR_SCRIPT = REPO_ROOT / "scripts" / "vendor_assets.py"
NODE_PACKAGE = REPO_ROOT / "node_modules" / "bootstrap-italia"
NODE_MISSING = "node_modules/bootstrap-italia is absent: run `npm ci` in the repository root"

PAGES = {
    "plain.html": """{% extends "base.html" %}
{% block title %}Pagina di prova{% endblock %}
{% block content %}<h1>Benvenuti</h1>{% endblock %}""",
    "form.html": """{% extends "base.html" %}
{% from "_forms.html" import render_section, render_field, error_summary, csrf_field %}
{% block title %}Domanda{% endblock %}
{% block content %}
<h1>Domanda</h1>
{{ error_summary(form.errors) }}
<form method="post" action="/modulo" novalidate>
  {{ csrf_field() }}
  {% for section in form.sections %}{{ render_section(section) }}{% endfor %}
  {% for field in loose_fields %}{{ render_field(field) }}{% endfor %}
  <button type="submit" class="btn btn-primary">Invia</button>
</form>
{% endblock %}""",
}


class OrganisationSchema(FormSchema):
    name = fields.String(required=True, metadata={"label": "Denominazione",
                                                  "autocomplete": "organization"})
    tax_code = fields.String(required=True, validate=validate.Regexp(r"^\d{11}$"),
                             metadata={"label": "Codice fiscale", "help": "Undici cifre."})
    kind = fields.String(required=True, validate=validate.OneOf(["coop", "odv"]), metadata={
        "label": "Forma giuridica", "choices": [("coop", "Cooperativa sociale"), ("odv", "ODV")]})
    email = fields.Email(metadata={"label": "E-mail", "autocomplete": "email"})
    founded = fields.Date(metadata={"label": "Data di costituzione"})


class ApplicationSchema(FormSchema):
    organisation = fields.Nested(OrganisationSchema, required=True, metadata={
        "section": "Ente proponente", "description": "I dati dell'ente che presenta la domanda."})
    role = fields.String(required=True, validate=validate.OneOf(["lead", "partner"]), metadata={
        "label": "Ruolo", "widget": "radio", "section": "Partecipazione",
        "choices": [("lead", "Capofila"), ("partner", "Partner")]})
    areas = fields.List(fields.String(), required=True, metadata={
        "label": "Aree di intervento", "section": "Partecipazione", "help": "Una o più.",
        "choices": [("minori", "Minori"), ("anziani", "Anziani"), ("disabilita", "Disabilità")]})
    team = fields.Integer(metadata={"label": "Operatori impiegati", "section": "Partecipazione"})
    proposal = fields.String(metadata={"label": "Proposta", "widget": "textarea",
                                       "section": "Partecipazione"})
    truthful = Confirmation(message="È necessario accettare la dichiarazione.", metadata={
        "label": "Dichiaro che i dati sono veritieri", "section": "Dichiarazioni"})


@pytest.fixture
def make_common_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Builds the test app with ``create_service_app``, as every service does, plus two pages."""
    ensure_keypair(tmp_path / "id.pem", tmp_path / "id.pub.pem")
    engine = make_engine(f"sqlite:///{tmp_path / 'common.sqlite3'}")

    def make(*, demo: bool = False) -> Flask:
        platform = platform_settings({
            "AMBITO_VAR_DIR": str(tmp_path / "var"),
            "AMBITO_DATA_DIR": str(REPO_ROOT / "data" / "ambiti" / "vsssc"),
            "AMBITO_IDENTITY_PUBLIC_KEY_FILE": str(tmp_path / "id.pub.pem"),
            "AMBITO_IDENTITY_COOKIE": IDENTITY_COOKIE, "AMBITO_DEMO": str(demo).lower()})
        app = create_service_app("common", __name__, platform=platform,
                                 session_factory=make_session_factory(engine))
        app.extensions["test_issuer"] = TokenIssuer((tmp_path / "id.pem").read_bytes(),
                                                    dt.timedelta(minutes=5))
        _add_test_pages(app)
        return app

    yield make
    engine.dispose()


@pytest.fixture
def common_app(make_common_app: Callable[..., Flask]) -> Flask:
    return make_common_app()


def _add_test_pages(app: Flask) -> None:
    app.secret_key = "test-only"
    app.jinja_loader = ChoiceLoader([DictLoader(PAGES), app.jinja_loader])
    # create_service_app leaves static files to the gateway (or nginx); this app serves them itself.
    app.static_folder = str(COMMON_STATIC)
    app.static_url_path = "/static"
    app.add_url_rule("/static/<path:filename>", endpoint="static", view_func=app.send_static_file)

    @app.get("/")
    def home() -> str:
        return render_template("plain.html")

    @app.get("/messaggi")
    def messages():  # type: ignore[no-untyped-def]
        flash("Domanda inviata.", "success")
        flash("Invio non riuscito.", "error")
        flash("Nota informativa.")
        return redirect("/")

    @app.route("/modulo", methods=["GET", "POST"])
    def application_form() -> str:
        schema = ApplicationSchema()
        values: dict[str, object] = {}
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            values = parse_form(schema, request.form)
            try:
                load(schema, values)
            except InvalidInput as exc:
                errors = exc.errors
        loose = [{"name": "contact.phone", "label": "Telefono", "widget": "tel", "required": False,
                  "help": "", "value": "", "errors": [], "autocomplete": "tel", "choices": []}]
        return render_template("form.html", form=build_form(schema, values, errors), loose_fields=loose)

    @app.get("/mancante")
    def missing() -> str:
        raise NotFound("La domanda richiesta non esiste.")

    @app.get("/guasto")
    def broken() -> str:
        raise RuntimeError("connection string postgres://secret@db")


def _sign_in(app: Flask, client: FlaskClient, *roles: str) -> None:
    identity = Identity(subject="u1", username="mrossi", roles=roles, display_name="Maria Rossi",
                        comune="clusone" if COMUNE_OPERATOR in roles else None)
    client.set_cookie(IDENTITY_COOKIE, app.extensions["test_issuer"].issue(identity))


def _page(response: TestResponse) -> lxml.html.HtmlElement:
    assert response.mimetype == "text/html"
    return lxml.html.fromstring(response.get_data(as_text=True))


def _asset_urls(page: lxml.html.HtmlElement) -> list[str]:
    return (page.xpath("//link[@rel='stylesheet']/@href") + page.xpath("//script/@src")
            + page.xpath("//*[local-name()='use']/@href"))


def test_common_templates_layout_for_an_anonymous_visitor(common_app: Flask) -> None:
    response = common_app.test_client().get("/")
    page = _page(response)
    assert page.get("lang") == "it"
    assert page.xpath("//meta[@name='viewport']/@content") == ["width=device-width, initial-scale=1"]
    assert page.findtext(".//title").startswith("Pagina di prova – Ambito")
    assert page.xpath("//link[@rel='stylesheet']/@href")[0] == (
        "/static/vendor/bootstrap-italia/css/bootstrap-italia.min.css")
    scripts = page.xpath("//script")
    assert [s.get("src") for s in scripts] == [
        "/static/vendor/bootstrap-italia/js/bootstrap-italia.bundle.min.js"]
    assert scripts[0].getparent().tag == "body" and not (scripts[0].text or "").strip()
    # The skip link reaches the main content, the first thing a keyboard user can focus.
    skip = page.xpath("//a[normalize-space()='Vai al contenuto']")[0]
    assert skip.get("href") == "#contenuto" and page.get_element_by_id("contenuto").tag == "main"
    assert page.xpath("//a/@href")[0] == "#contenuto"
    slim = page.find_class("it-header-slim-wrapper")[0]
    assert slim.find_class("navbar-brand")[0].text_content() == "Comune di Clusone"
    assert page.xpath("normalize-space(//*[@class='it-brand-title'])") == (
        "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve")
    menu = page.get_element_by_id("menu-principale")
    assert [(a.text_content(), a.get("href")) for a in menu.iter("a")] == [
        ("Home", "/"), ("Avvisi", "/intake/avvisi")]
    assert menu.xpath(".//a[@aria-current='page']/@href") == ["/"]
    assert page.xpath("//a[normalize-space()='Accedi']/@href") == ["/accesso"]
    assert not page.xpath("//form[@action='/auth/logout']")
    assert "Ambiente dimostrativo" not in response.get_data(as_text=True)
    footer = page.get_element_by_id("piede")
    text = " ".join(footer.text_content().split())
    for expected in ("Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve",
                     "Via Somvico 2, 24023 Clusone (BG)", "protocollo@pec.comune.clusone.bg.it",
                     "ambito@comune.clusone.bg.it"):
        assert expected in text
    assert footer.xpath(".//a[normalize-space()='Dichiarazione di accessibilità']")


def test_common_templates_demo_banner(make_common_app: Callable[..., Flask]) -> None:
    page = _page(make_common_app(demo=True).test_client().get("/"))
    banner = page.find_class("ambito-demo-banner")[0]
    assert " ".join(banner.text_content().split()) == (
        "Ambiente dimostrativo: i dati non hanno valore legale")


def test_common_templates_protocol_officer_sees_protocollo_and_can_log_out(common_app: Flask) -> None:
    client = common_app.test_client()
    _sign_in(common_app, client, PROTOCOL_OFFICER)
    response = client.get("/")
    page = _page(response)
    menu = page.get_element_by_id("menu-principale")
    assert [a.get("href") for a in menu.iter("a")] == ["/", "/intake/avvisi", "/protocollo/"]
    assert "Maria Rossi" in page.find_class("ambito-user")[0].text_content()
    assert not page.xpath("//a[@href='/accesso']")
    logout = page.xpath("//form[@action='/auth/logout']")[0]
    assert logout.get("method") == "post"
    token = logout.xpath(".//input[@type='hidden'][@name='csrf_token']/@value")[0]
    # The hidden field echoes the cookie the CSRF check compares it with.
    cookie = client.get_cookie(CSRF_COOKIE)
    assert cookie is not None and token == cookie.value


def test_common_templates_other_roles_do_not_see_protocollo(common_app: Flask) -> None:
    client = common_app.test_client()
    _sign_in(common_app, client, COMUNE_OPERATOR)
    page = _page(client.get("/"))
    assert not page.xpath("//a[@href='/protocollo/']")
    assert page.xpath("//form[@action='/auth/logout']")


def test_common_templates_flash_messages_become_alerts(common_app: Flask) -> None:
    client = common_app.test_client()
    page = _page(client.get("/messaggi", follow_redirects=True))
    alerts = [(a.get("class"), a.get("role"), a.text_content())
              for a in page.find_class("ambito-flashes")[0].find_class("alert")]
    assert alerts == [("alert alert-success", "status", "Domanda inviata."),
                      ("alert alert-danger", "alert", "Invio non riuscito."),
                      ("alert alert-info", "status", "Nota informativa.")]
    assert not _page(client.get("/")).find_class("ambito-flashes")


def _form_page(app: Flask, data: dict[str, str | list[str]] | None = None) -> lxml.html.HtmlElement:
    client = app.test_client()
    page = _page(client.get("/modulo"))
    if data is None:
        return page
    token = page.xpath("//input[@name='csrf_token']/@value")[0]
    response = client.post("/modulo", data={**data, "csrf_token": token})
    assert response.status_code == 200
    return _page(response)


def test_common_templates_every_control_is_labelled_and_required_ones_say_so(common_app: Flask) -> None:
    page = _form_page(common_app)
    form = page.xpath("//form[@action='/modulo']")[0]
    controls = form.xpath(".//input[not(@type='hidden')] | .//select | .//textarea")
    ids = [c.get("id") for c in controls]
    assert len(ids) == len(set(ids)) == 14
    assert len(page.xpath("//@id")) == len(set(page.xpath("//@id")))
    for control in controls:
        assert len(form.xpath(".//label[@for=$id]", id=control.get("id"))) == 1, control.get("id")
    name = page.get_element_by_id("f-organisation-name")
    assert (name.get("name"), name.get("type"), name.get("autocomplete")) == (
        "organisation.name", "text", "organization")
    assert name.get("required") is not None and name.get("aria-required") == "true"
    assert "(obbligatorio)" in form.xpath(".//label[@for='f-organisation-name']")[0].text_content()
    email = page.get_element_by_id("f-organisation-email")
    assert email.get("type") == "email" and email.get("required") is None
    assert "(obbligatorio)" not in form.xpath(".//label[@for='f-organisation-email']")[0].text_content()
    assert page.get_element_by_id("f-organisation-founded").get("type") == "date"
    assert page.get_element_by_id("f-team").get("type") == "number"
    assert page.get_element_by_id("f-proposal").tag == "textarea"
    assert page.get_element_by_id("f-contact-phone").get("type") == "tel"
    kind = page.get_element_by_id("f-organisation-kind")
    assert kind.tag == "select" and kind.getparent().get("class") == "select-wrapper ambito-field"
    assert [(o.get("value"), o.text) for o in kind.iter("option")] == [
        ("", "Selezionare un'opzione"), ("coop", "Cooperativa sociale"), ("odv", "ODV")]
    # Hints are announced with their control.
    tax_code = page.get_element_by_id("f-organisation-tax_code")
    assert tax_code.get("aria-describedby") == "f-organisation-tax_code-hint"
    assert page.get_element_by_id("f-organisation-tax_code-hint").text == "Undici cifre."
    # Groups of radios and checkboxes are fieldsets named by their legend.
    for name, legend, count in (("role", "Ruolo (obbligatorio)", 2),
                                ("areas", "Aree di intervento (obbligatorio)", 3)):
        group = page.get_element_by_id(f"f-{name}-group")
        assert group.tag == "fieldset"
        assert " ".join(group.find("legend").text_content().split()) == legend
        options = group.xpath(".//input[@name=$n]", n=name)
        assert len(options) == count and options[0].get("id") == f"f-{name}"
        assert all(o.getparent().get("class") == "form-check" for o in options)
    assert page.get_element_by_id("f-areas-group").get("aria-describedby") == "f-areas-hint"
    # Sections are fieldsets too, with their description.
    legends = [" ".join(s.find("legend").text_content().split()) for s in page.find_class("ambito-section")]
    assert legends == ["Ente proponente", "Partecipazione", "Dichiarazioni"]
    assert "I dati dell'ente che presenta la domanda." in page.find_class("ambito-section")[0].text_content()
    assert not page.find_class("ambito-error-summary") and not page.find_class("is-invalid")


def test_common_templates_errors_are_summarised_and_tied_to_their_fields(common_app: Flask) -> None:
    page = _form_page(common_app, {"organisation.name": "Coop Sole", "organisation.tax_code": "123",
                                   "organisation.kind": "odv", "areas": ["minori", "anziani"],
                                   "proposal": "Centro diurno <estivo>"})
    summary = page.find_class("ambito-error-summary")[0]
    assert (summary.get("role"), summary.get("tabindex")) == ("alert", "-1")
    assert summary.findtext(".//h2").strip() == "Il modulo contiene 3 errori"
    links = [(a.get("href"), a.text_content()) for a in summary.iter("a")]
    assert links == [("#f-organisation-tax_code", "Codice fiscale: Formato non valido."),
                     ("#f-role", "Ruolo: Campo obbligatorio."),
                     ("#f-truthful",
                      "Dichiaro che i dati sono veritieri: È necessario accettare la dichiarazione.")]
    for href, _text in links:
        target = page.get_element_by_id(href[1:])
        assert target.tag == "input" and target.get("aria-invalid") == "true"
        assert "is-invalid" in target.get("class").split()
    tax_code = page.get_element_by_id("f-organisation-tax_code")
    assert tax_code.get("value") == "123"
    assert tax_code.get("aria-describedby") == "f-organisation-tax_code-hint f-organisation-tax_code-error"
    error = page.get_element_by_id("f-organisation-tax_code-error")
    assert error.get("class") == "invalid-feedback" and error.text_content() == "Formato non valido."
    # Bootstrap shows .invalid-feedback only as a later sibling of the .is-invalid control.
    assert error.getparent() is tax_code.getparent()
    assert error.getparent().index(error) > error.getparent().index(tax_code)
    role = page.get_element_by_id("f-role-group")
    assert role.get("aria-describedby") == "f-role-error" and role.get("aria-required") == "true"
    assert page.get_element_by_id("f-role-error").text_content() == "Campo obbligatorio."
    truthful = page.get_element_by_id("f-truthful")
    assert truthful.get("aria-describedby") == "f-truthful-error" and truthful.get("required") is not None
    # What was entered comes back, escaped, and valid fields are not marked.
    assert page.get_element_by_id("f-organisation-name").get("value") == "Coop Sole"
    assert "is-invalid" not in page.get_element_by_id("f-organisation-name").get("class")
    assert page.get_element_by_id("f-organisation-name").get("aria-invalid") is None
    assert page.xpath("//select[@id='f-organisation-kind']/option[@selected]/@value") == ["odv"]
    assert page.xpath("//input[@name='areas'][@checked]/@value") == ["minori", "anziani"]
    assert page.get_element_by_id("f-proposal").text == "Centro diurno <estivo>"
    assert page.get_element_by_id("f-truthful").get("checked") is None


def test_common_templates_a_valid_post_round_trips_through_the_macros(common_app: Flask) -> None:
    page = _form_page(common_app, {
        "organisation.name": "Coop Sole", "organisation.tax_code": "01234567890",
        "organisation.kind": "coop", "organisation.founded": "2001-02-03", "role": "lead",
        "areas": ["disabilita"], "team": "4", "truthful": "true"})
    assert not page.find_class("ambito-error-summary") and not page.find_class("is-invalid")
    assert page.get_element_by_id("f-truthful").get("checked") is not None
    assert page.get_element_by_id("f-truthful").get("value") == "true"
    assert page.xpath("//input[@name='role'][@checked]/@value") == ["lead"]
    assert page.get_element_by_id("f-organisation-founded").get("value") == "2001-02-03"


def test_common_templates_form_without_the_csrf_field_is_refused(common_app: Flask) -> None:
    client = common_app.test_client()
    client.get("/modulo")
    response = client.post("/modulo", data={"organisation.name": "X"}, headers={"Accept": "text/html"})
    assert response.status_code == 400
    page = _page(response)
    assert page.findtext(".//h1") == "Modulo non valido"
    assert "Ricarichi la pagina" in page.text_content()


def test_common_templates_error_pages_never_show_internals(common_app: Flask) -> None:
    common_app.config["PROPAGATE_EXCEPTIONS"] = False
    client = common_app.test_client()
    missing = client.get("/mancante")
    page = _page(missing)
    assert missing.status_code == 404
    assert page.findtext(".//h1") == "Non trovato"
    assert page.find_class("lead")[0].text == "La domanda richiesta non esiste."
    assert page.xpath("//main//a[normalize-space()='Torna alla pagina iniziale']/@href") == ["/"]
    unknown = _page(client.get("/nessuna-pagina"))
    assert unknown.findtext(".//h1") == "Pagina non trovata" and not unknown.find_class("lead")
    broken = client.get("/guasto")
    text = broken.get_data(as_text=True)
    assert broken.status_code == 500
    assert _page(broken).findtext(".//h1") == "Errore interno"
    assert "Traceback" not in text and "postgres://" not in text and "RuntimeError" not in text


def test_common_templates_reference_no_cdn(common_app: Flask) -> None:
    client = common_app.test_client()
    _sign_in(common_app, client, PROTOCOL_OFFICER)
    for path in ("/", "/modulo", "/mancante"):
        for url in _asset_urls(_page(client.get(path))):
            assert url.startswith("/static/") and not re.match(r"^(https?:)?//", url), url
    for source in [*COMMON_TEMPLATES.glob("*.html"), *(COMMON_STATIC / "css").glob("*.css")]:
        text = source.read_text("utf-8")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), source
        assert not re.search(r"""url\(["']?(https?:)?//""", text), source


@pytest.fixture(scope="module")
def common_vendored() -> None:
    """Run the vendor script as ``make`` does; needs ``npm ci`` to have filled node_modules."""
    require(NODE_PACKAGE.is_dir(), NODE_MISSING)
    subprocess.run([sys.executable, str(VENDOR_SCRIPT)], check=True, capture_output=True)


@pytest.mark.usefixtures("common_vendored")
def test_common_templates_every_asset_a_page_loads_is_served(common_app: Flask) -> None:
    client = common_app.test_client()
    urls = set(_asset_urls(_page(client.get("/"))))
    css_urls = [u for u in urls if u.endswith(".css")]
    for css in css_urls:
        text = client.get(css).get_data(as_text=True)
        urls |= {urljoin(css, u) for u in re.findall(r"""url\(["']?([^"')]+)""", text)
                 if not u.startswith("data:")}
    urls = {u.partition("#")[0] for u in urls}
    fonts = {u for u in urls if u.endswith(".woff2")}
    assert {Path(u).parent.name for u in fonts} == {"Titillium_Web", "Roboto_Mono", "Lora"}
    assert "/static/vendor/bootstrap-italia/svg/sprites.svg" in urls
    for url in sorted(urls):
        response = client.get(url)
        assert response.status_code == 200, url
        response.close()


def test_common_templates_vendor_script_is_idempotent(tmp_path: Path) -> None:
    require(NODE_PACKAGE.is_dir(), NODE_MISSING)
    target = tmp_path / "vendor"
    command = [sys.executable, str(VENDOR_SCRIPT), "--target", str(target)]
    first = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    assert re.search(r"\b[1-9]\d* copied, 0 unchanged, 0 removed", first), first
    assert (target / "css" / "bootstrap-italia.min.css").is_file()
    assert (target / "js" / "bootstrap-italia.bundle.min.js").is_file()
    (target / "fonts" / "Lora" / "old-v1.woff2").write_bytes(b"stale")
    second = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    assert re.search(r"\b0 copied, [1-9]\d* unchanged, 1 removed", second), second


def test_common_templates_vendor_script_explains_a_missing_npm_install(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(VENDOR_SCRIPT), "--source", str(tmp_path / "none"),
                             "--target", str(tmp_path / "vendor")], capture_output=True, text=True)
    assert result.returncode == 1 and "npm ci" in result.stderr
    assert not (tmp_path / "vendor").exists()
