"""Per-submission documents pipeline against a bare WeasyPrint render of the same HTML.

The pipeline is what a documents worker does for each submission: PDF/A-3u
(tagged, with dati.json), PAdES B-T seal (RFC 3161 timestamp from a local TSA
over HTTP, as embedded mode runs it), sealed Segnatura.xml, metadata.xml,
manifest and message.eml, with what a worker keeps between documents (the loaded seal key,
the parsed static stylesheet and its font configuration, the kept-alive TSA connection). The
baselines are WeasyPrint alone rendering the same HTML and CSS to a plain PDF with default
options, in the same typeface through the same @font-face rules (Titillium Web as shipped, or
the files of --font-dir: an empty folder means DejaVu Sans): "kept" parses the CSS and loads the
fonts once, as the worker does (the strict figure: only what the pipeline adds counts);
"script" does both on every render, as a one-off script following WeasyPrint's documentation
would. All run interleaved in one process, on the same machine, in the same minute, so the
ratios survive a noisy 2-core host where absolute times do not.

    .venv/bin/python bench/bench_documents_pipeline.py [--rounds N] [--font-dir DIR]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from ambito_common.logging import configure_logging
from documents.builders import PadesSealer, build_documents, ensure_dev_pki
from documents.builders.render import render_html
from documents.tsa_server import LocalTsa

ANSWER = ("La cooperativa gestisce servizi domiciliari e diurni per anziani e persone con "
          "disabilità nei comuni dell'Alto Serio e della Val di Scalve. ") * 6


def payload() -> dict:
    fields = [{"label": f"Campo {i}", "value": f"Valore del campo {i}"} for i in range(1, 9)]
    return {
        "file_stem": "domanda-BENCH",
        "document": {
            "header": {"lead_body": "Comune di Clusone",
                       "ambito": "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve"},
            "title": "Manifestazione di interesse alla co-programmazione",
            "subtitle": "Piano di Zona 2025-2027",
            "sections": [
                {"title": "Organizzazione", "fields": fields},
                {"title": "Legale rappresentante", "fields": fields[:3]},
                {"title": "Attività", "fields": [{"label": "Descrizione", "value": ANSWER}]},
            ],
            "declarations": ["Si impegna a partecipare alla co-programmazione.",
                             "Acconsente alla pubblicazione dei dati e dei contributi.",
                             "Libera l'Amministrazione da responsabilità sulla proprietà intellettuale."],
            "submitted_at": "21/11/2026 10:15", "tracking_code": "ABCD-EFGH-JKMN-PQRS-TVWX",
            "registration": "ISTANZE_ONLINE 0000001 del 21/11/2026",
        },
        "data": {"organisation": {"name": "Cooperativa Sociale Il Sentiero"}, "answer": ANSWER},
        "meta": {
            "registration": {"ipa_code": "c_c800", "aoo_code": "AOO_DEMO_CLUSONE",
                             "register_code": "ISTANZE_ONLINE", "number": "0000001",
                             "date": "2026-11-21"},
            "sender": {"name": "Cooperativa Sociale Il Sentiero", "tax_code": "01234560165",
                       "pec": "ilsentiero@pec.example.it", "email": "info@ilsentiero.example.it"},
            "recipient": {"name": "Comune di Clusone", "ipa_code": "c_c800",
                          "aoo_code": "AOO_DEMO_CLUSONE", "aoo_name": "Protocollo generale",
                          "pec": "protocollo@pec.comune.clusone.bg.it"},
            "subject": "Manifestazione di interesse - co-programmazione Piano di Zona 2025-2027",
        },
    }


class BareRender:
    """WeasyPrint alone on the pipeline's HTML and CSS, default options (plain PDF, no tags).

    WeasyPrint loads @font-face fonts only through a FontConfiguration; without one the
    baseline would silently render with a system font. ``keep``: parse the CSS and load the
    fonts once and reuse them, like the worker; otherwise on every render.
    """

    def __init__(self, document: dict, font_dir: Path | None, *, keep: bool) -> None:
        self.html, self.css_text = render_html(document, font_dir=font_dir)
        self.kept = self._stylesheet() if keep else None

    def _stylesheet(self) -> tuple[object, object]:
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        font_config = FontConfiguration()
        return CSS(string=self.css_text, font_config=font_config), font_config

    def __call__(self) -> bytes:
        from weasyprint import HTML

        css, font_config = self.kept or self._stylesheet()
        return HTML(string=self.html).write_pdf(stylesheets=[css], font_config=font_config)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--font-dir", type=Path, default=None, help="Titillium Web files (default: shipped)")
    args = parser.parse_args()
    configure_logging(json=False, level=logging.WARNING)
    data = payload()
    with tempfile.TemporaryDirectory() as tmp:
        pki = ensure_dev_pki(Path(tmp), "Comune di Clusone")
        sealer = PadesSealer.from_pkcs12(pki.seal_p12, pki.p12_password, ca_chain=[pki.ca_cert])
        tsa = LocalTsa(pki.tsa_cert, pki.tsa_key, pki.ca_cert).start()

        def pipeline() -> object:
            return build_documents(data, sealer=sealer, message_from="ambito@pec.example.it",
                                   timestamper_url=tsa.url, font_dir=args.font_dir)

        runs = {"kept": BareRender(data["document"], args.font_dir, keep=True),
                "script": BareRender(data["document"], args.font_dir, keep=False),
                "pipeline": pipeline}
        for warm in runs.values():  # fonts, templates, the signer's first-seal sizing
            warm()
        timings: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                timings[name].append(time.perf_counter() - start)
        tsa.stop()

    kept, script, full = (statistics.median(timings[name]) for name in ("kept", "script", "pipeline"))
    print(f"rounds: {args.rounds}, fonts: {args.font_dir or 'Titillium Web (shipped)'}")
    print(f"baseline kept    bare WeasyPrint, CSS and fonts loaded once   median {kept * 1000:8.1f} ms")
    print(f"baseline script  bare WeasyPrint, CSS and fonts every render  median {script * 1000:8.1f} ms")
    print(f"pipeline         PDF/A + B-T seal + package                   median {full * 1000:8.1f} ms")
    print(f"ratio pipeline/kept: {full / kept:.2f}   pipeline/script: {full / script:.2f}")


if __name__ == "__main__":
    main()
