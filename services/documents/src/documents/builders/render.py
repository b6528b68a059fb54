"""Render an application (domanda) into a tagged PDF/A-3u with WeasyPrint.

The submitted data travels inside the PDF as ``dati.json`` (AFRelationship /Data): PDF/A-3
allows embedded files of any type, and a recipient can then reprocess the exact data that
was submitted without OCR-ing the printout.
"""

from __future__ import annotations

import atexit
import datetime as dt
import decimal
import json
import re
import threading
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["BUNDLED_FONT_DIR", "DATA_ATTACHMENT_NAME", "PDF_VARIANT", "render_html", "render_pdf",
           "serialise_data"]

PDF_VARIANT = "pdf/a-3u"
DATA_ATTACHMENT_NAME = "dati.json"
GENERATOR = "Piattaforma servizi sociali d'Ambito"

_TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Titillium Web, the Designers Italia typeface (SIL OFL 1.1, licence in OFL.txt beside the
#: files), shipped with the service as TrueType: the TTFs of the Bootstrap Italia npm package.
#: TTF rather than the vendored woff2 so that a sealed PDF never depends on the web assets
#: having been vendored, and WeasyPrint embeds the font without decompressing it first.
BUNDLED_FONT_DIR = Path(__file__).resolve().parent / "fonts"
_FALLBACK_FAMILY = "DejaVu Sans"
_TITILLIUM_FAMILY = "Titillium Web"
_FONT_EXTENSIONS = {".ttf": "truetype", ".otf": "opentype", ".woff": "woff", ".woff2": "woff2"}
# Style suffix of the Google Fonts distribution (TitilliumWeb-SemiBold.ttf) -> (weight, style)
_TITILLIUM_STYLES = {
    "ExtraLight": (200, "normal"),
    "ExtraLightItalic": (200, "italic"),
    "Light": (300, "normal"),
    "LightItalic": (300, "italic"),
    "Regular": (400, "normal"),
    "Italic": (400, "italic"),
    "SemiBold": (600, "normal"),
    "SemiBoldItalic": (600, "italic"),
    "Bold": (700, "normal"),
    "BoldItalic": (700, "italic"),
    "Black": (900, "normal"),
}
# Google Fonts names (TitilliumWeb-Bold) or google-webfonts-helper names as in Bootstrap
# Italia (titillium-web-v10-latin-ext_latin-700italic; "regular" and "italic" mean 400).
_TITILLIUM_FILE = re.compile(
    r"^(?:TitilliumWeb-(?P<style>[A-Za-z]+)"
    r"|titillium-web-v\d+-[a-z_-]+?-(?P<weight>\d{3}|regular|italic)(?P<italic>italic)?)$"
)


def render_pdf(
    document: dict[str, Any],
    data: dict[str, Any],
    *,
    font_dir: Path | None = None,
) -> bytes:
    """Render ``document`` to tagged PDF/A-3u bytes, embedding ``data`` as ``dati.json``.

    ``document``::

        {"header": {"lead_body": "Comune di Clusone", "ambito": "Ambito Territoriale ..."},
         "title": "...", "subtitle": "Avviso: ...",
         "sections": [{"title": "Organizzazione", "fields": [{"label": ..., "value": ...}]}],
         "declarations": ["..."], "submitted_at": "21/11/2026 10:15" (already Europe/Rome),
         "tracking_code": "...", "registration": "REG-ONLINE 0000001 del 21/11/2026"}

    ``font_dir`` holds the Titillium Web files (default: the ones shipped with the service,
    :data:`BUNDLED_FONT_DIR`), named as Google Fonts (``TitilliumWeb-Regular.ttf``) or as
    Bootstrap Italia (``titillium-web-v10-latin-ext_latin-regular.woff2``) distribute them;
    a folder without a regular face means DejaVu Sans. DejaVu Sans also supplies any glyph
    Titillium lacks (its files cover Latin only). WeasyPrint embeds subsets of the fonts used.
    """
    # Imported here: WeasyPrint pulls in Pango/HarfBuzz via cffi, which web processes that
    # never render a PDF should not pay for.
    from weasyprint import CSS, HTML, Attachment

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    html = _html(document, now)
    stylesheet, font_config = _stylesheet(font_dir)
    footer = CSS(string=_footer_css(document), base_url=str(_TEMPLATES), font_config=font_config)
    attachment = Attachment(
        string=serialise_data(data),
        name=DATA_ATTACHMENT_NAME,
        description="Dati della domanda in formato JSON",
        created=now,
        modified=now,
        relationship="Data",
    )
    return HTML(string=html, base_url=str(_TEMPLATES)).write_pdf(
        stylesheets=[stylesheet, footer],
        font_config=font_config,
        pdf_variant=PDF_VARIANT,
        # pdf/a-3u does not force tags (only the "a" levels do); we want them for
        # accessibility, and WeasyPrint 70 honours the option for the "u" variants.
        pdf_tags=True,
        attachments=[attachment],
        finisher=_dedupe_associated_files,
    )


_local = threading.local()
_font_configs: list[Any] = []  # every thread's, so that exit can clean them (see _release_font_configs)


@atexit.register
def _release_font_configs() -> None:
    """Remove the fonts' temporary folders while the interpreter still can.

    WeasyPrint removes a FontConfiguration's folder in ``__del__``; for the configurations kept
    per thread that would run during interpreter teardown, when ``rmtree`` is already gone
    (a traceback on every worker exit, and the folder left behind).
    """
    for font_config in _font_configs:
        font_config.__del__()
        font_config._folder = None


def _stylesheet(font_dir: Path | None) -> tuple[Any, Any]:
    """The parsed static stylesheet and the font configuration holding its @font-face fonts.

    Built once per worker thread and font folder: parsing the stylesheet and setting up
    fontconfig cost about 8 ms, a tenth of a render, and never change between documents
    (WeasyPrint objects are not shared across threads, hence one per thread).
    """
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    cache: dict[Path | None, tuple[Any, Any]] = _local.__dict__.setdefault("stylesheets", {})
    if font_dir not in cache:
        font_config = FontConfiguration()
        _font_configs.append(font_config)
        css = CSS(string=_static_css(font_dir), base_url=str(_TEMPLATES), font_config=font_config)
        cache[font_dir] = (css, font_config)
    return cache[font_dir]


def render_html(
    document: dict[str, Any], *, font_dir: Path | None = None, created: dt.datetime | None = None
) -> tuple[str, str]:
    """The HTML and the CSS that :func:`render_pdf` hands to WeasyPrint (the benchmark renders them bare)."""
    html = _html(document, created or dt.datetime.now(dt.UTC).replace(microsecond=0))
    return html, _static_css(font_dir) + "\n" + _footer_css(document)


def _html(document: dict[str, Any], created: dt.datetime) -> str:
    return (
        _environment()
        .get_template("application.html")
        .render(
            document=_normalise(document),
            generator=GENERATOR,
            created=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    )


def _dedupe_associated_files(_document: Any, pdf: Any) -> None:
    """Drop duplicate entries from the catalog /AF array.

    WeasyPrint 70's PDF/A-3 code adds every embedded file to /AF twice (once from the
    /EmbeddedFiles name tree, once from the /Filespec objects); a file must be listed once.
    """
    associated = pdf.catalog.get("AF")
    if associated:
        unique = list(dict.fromkeys(associated))
        associated.clear()
        associated.extend(unique)


def serialise_data(data: dict[str, Any]) -> str:
    """Serialise the submitted data exactly as it is embedded in the PDF (``dati.json``)."""
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Fill optional keys so the template can stay free of existence checks."""
    header = dict(document.get("header") or {})
    header.setdefault("lead_body", "")
    header.setdefault("ambito", "")
    sections = []
    for section in document.get("sections") or []:
        fields = [
            {"label": str(f.get("label", "")), "value": "" if f.get("value") is None else str(f["value"])}
            for f in section.get("fields") or []
        ]
        sections.append({"title": section.get("title", ""), "fields": fields})
    return {
        "header": header,
        "title": document.get("title", ""),
        "subtitle": document.get("subtitle", ""),
        "registration": document.get("registration", ""),
        "sections": sections,
        "declarations": [str(d) for d in document.get("declarations") or []],
        "submitted_at": document.get("submitted_at", ""),
        "tracking_code": document.get("tracking_code", ""),
    }


def _css_string(text: str) -> str:
    """Quote ``text`` as a CSS string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\n\r\f]", " ", escaped)
    return f'"{escaped}"'


def _titillium_faces(font_dir: Path) -> list[tuple[Path, int, str]]:
    """The Titillium Web files in ``font_dir`` as (path, weight, style), regular face required."""
    if not font_dir.is_dir():
        return []
    faces = []
    for path in sorted(font_dir.iterdir()):
        if path.suffix.lower() not in _FONT_EXTENSIONS:
            continue
        face = _titillium_face(path.stem)
        if face:
            faces.append((path.resolve(), *face))
    # Without the regular face body text would be synthesised from another weight.
    if not any(weight == 400 and style == "normal" for _, weight, style in faces):
        return []
    return faces


def _titillium_face(stem: str) -> tuple[int, str] | None:
    match = _TITILLIUM_FILE.match(stem)
    if not match:
        return None
    if match["style"]:
        return _TITILLIUM_STYLES.get(match["style"])
    if match["weight"] == "italic":
        return 400, "italic"
    weight = 400 if match["weight"] == "regular" else int(match["weight"])
    return weight, "italic" if match["italic"] else "normal"


def _static_css(font_dir: Path | None) -> str:
    """The stylesheet shared by every document: the template's CSS and the typeface."""
    rules = [(_TEMPLATES / "application.css").read_text(encoding="utf-8")]
    faces = _titillium_faces(Path(font_dir) if font_dir is not None else BUNDLED_FONT_DIR)
    if faces:
        family = f'"{_TITILLIUM_FAMILY}", "{_FALLBACK_FAMILY}", sans-serif'
        for path, weight, style in faces:
            fmt = _FONT_EXTENSIONS[path.suffix.lower()]
            rules.append(
                "@font-face {"
                f' font-family: "{_TITILLIUM_FAMILY}";'
                f' src: url("{path.as_uri()}") format("{fmt}");'
                f" font-weight: {weight}; font-style: {style}; }}"
            )
    else:
        family = f'"{_FALLBACK_FAMILY}", sans-serif'
    rules.append(f"html {{ font-family: {family}; }}")
    rules.append(f"@page {{ font-family: {family}; }}")
    return "\n".join(rules)


def _footer_css(document: dict[str, Any]) -> str:
    """The page footer: submission time and tracking code, on every page."""
    footer = f"Presentata il {document.get('submitted_at', '')}"
    if document.get("tracking_code"):
        footer += f" · Codice {document['tracking_code']}"
    return f"@page {{ @bottom-left {{ content: {_css_string(footer)}; }} }}"
