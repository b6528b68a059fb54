"""Tests of documents.builders with the real parts: WeasyPrint, pyHanko, signxml, lxml,
the AgID schema, and a local RFC 3161 timestamp authority over HTTP."""

from __future__ import annotations

import base64
import email
import hashlib
import json
import multiprocessing
import shutil
import subprocess
import time
from collections.abc import Iterator
from email.policy import default as default_policy
from io import BytesIO
from pathlib import Path

import pytest
from ambito_common.web import COMMON_STATIC
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from documents.builders import (
    DATA_ATTACHMENT_NAME,
    FileRef,
    PackageTooLarge,
    PadesSealer,
    SegnaturaError,
    assemble_package,
    build_documents,
    build_segnatura,
    ensure_dev_pki,
    read_impronte,
    render_pdf,
    validate_segnatura,
    verify_p7m,
    verify_seal,
    verify_segnatura,
)
from documents.builders.render import BUNDLED_FONT_DIR, _titillium_faces
from documents.tsa_server import LocalTsa
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader

REPO_ROOT = Path(__file__).resolve().parents[3]
XSD = REPO_ROOT.parent / "shared/standards/agid-protocollo/segnatura_protocollo.xsd"
ORGANISATION = "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve"
P12_PASSWORD = "prova-p12"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PDFAID = "http://www.aiim.org/pdfa/ns/id/"
PDF_NS = "http://ns.adobe.com/pdf/1.3/"
PROT = "http://www.agid.gov.it/protocollo/"

DOCUMENT = {
    "header": {
        "lead_body": "Comune di Clusone",
        "ambito": "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve",
    },
    "title": "Manifestazione di interesse alla co-programmazione",
    "subtitle": "Avviso: co-programmazione dei servizi sociali 2027",
    "sections": [
        {
            "title": "Organizzazione",
            "fields": [
                {"label": "Denominazione", "value": "Cooperativa Sociale L'Àncora"},
                {"label": "Codice fiscale", "value": "91234567890"},
            ],
        },
        {
            "title": "Referente",
            "fields": [
                {"label": "Nome e cognome", "value": "Maria Rossi"},
                {"label": "Telefono", "value": ""},
            ],
        },
    ],
    "declarations": [
        "Dichiara di essere iscritta al Registro unico nazionale del Terzo settore.",
        "Dichiara di aver preso visione dell'informativa sul trattamento dei dati personali.",
    ],
    "submitted_at": "21/11/2026 10:15",
    "tracking_code": "MI-7K3Q-9ZP2",
    "registration": "REG-ONLINE 0000001 del 21/11/2026",
}
DATA = {
    "organizzazione": {"denominazione": "Cooperativa Sociale L'Àncora", "codice_fiscale": "91234567890"},
    "aree": ["anziani", "disabilità"],
    "posti": 12,
    "note": None,
}
META = {
    "registration": {
        "ipa_code": "cm_vss",
        "aoo_code": "AOO_AMBITO",
        "register_code": "REG-ONLINE",
        "number": "0000001",
        "date": "2026-11-21",
        "time": "10:15:00+01:00",
        "name": "Comunità Montana Valle Seriana",
        "aoo_name": "Ambito Valle Seriana Superiore e Valle di Scalve",
        "pec": "ambito@pec.example.it",
    },
    "sender": {
        "name": "Cooperativa Sociale L'Àncora",
        "tax_code": "91234567890",
        "pec": "ancora@pec.example.it",
        "email": "info@ancora.example.it",
    },
    "recipient": {
        "name": "Comune di Clusone",
        "ipa_code": "c_c800",
        "aoo_code": "AOO_C800",
        "aoo_name": "Protocollo generale",
        "pec": "protocollo@pec.comune.clusone.example.it",
    },
    "subject": "Manifestazione di interesse alla co-programmazione - Cooperativa Sociale L'Àncora",
}
MESSAGE_FROM = "ambito@pec.example.it"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def builders_pki(tmp_path_factory: pytest.TempPathFactory):
    return ensure_dev_pki(
        tmp_path_factory.mktemp("pki"),
        ORGANISATION,
        p12_password=P12_PASSWORD,
        organization_identifier="VATIT-01234567890",
    )


@pytest.fixture(scope="module")
def builders_sealer(builders_pki) -> PadesSealer:
    return PadesSealer.from_pkcs12(builders_pki.seal_p12, P12_PASSWORD)


@pytest.fixture(scope="module")
def builders_pdf() -> bytes:
    return render_pdf(DOCUMENT, DATA)


@pytest.fixture(scope="module")
def builders_sealed(builders_sealer, builders_pdf) -> bytes:
    return builders_sealer.seal(builders_pdf, reason="Domanda registrata", location="Clusone")


@pytest.fixture(scope="module")
def builders_tsa_url(builders_pki) -> Iterator[str]:
    """A local RFC 3161 timestamp authority over HTTP (the real protocol, the dev TSA cert)."""
    with LocalTsa(builders_pki.tsa_cert, builders_pki.tsa_key, builders_pki.ca_cert) as tsa:
        yield tsa.url


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _xmp(reader: PdfFileReader) -> etree._Element:
    data = reader.root["/Metadata"].get_object().data
    return etree.fromstring(data[data.index(b"<x:xmpmeta") : data.rindex(b"</x:xmpmeta>") + 12])


def _xmp_value(xmp: etree._Element, ns: str, name: str) -> str | None:
    """An XMP simple property, written either as an attribute or as an element."""
    for description in xmp.iter(f"{{{RDF}}}Description"):
        if f"{{{ns}}}{name}" in description.attrib:
            return description.get(f"{{{ns}}}{name}")
        element = description.find(f"{{{ns}}}{name}")
        if element is not None:
            return element.text
    return None


def _segnatura(sealer: PadesSealer, sealed: bytes) -> tuple[FileRef, list[FileRef], bytes]:
    primary = FileRef("domanda-0000001.pdf", "application/pdf", sealed, role="primary", sealed=True)
    attachments = [
        FileRef("statuto.pdf", "application/pdf", b"%PDF-1.7 statuto", description="Statuto"),
        FileRef("bilancio.csv", "text/csv", b"anno;totale\n2026;1000\n", description="Bilancio"),
    ]
    return primary, attachments, build_segnatura(META, primary, attachments, signer=sealer)


# --------------------------------------------------------------------------- PKI


def test_dev_pki_is_generated_and_idempotent(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    pki = ensure_dev_pki(directory, "Comune di Prova", p12_password="segreto")
    files = [pki.ca_cert, pki.ca_key, pki.seal_cert, pki.seal_key, pki.seal_p12, pki.tsa_cert, pki.tsa_key]
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files}

    again = ensure_dev_pki(directory, "Comune di Prova", p12_password="segreto")

    assert again == pki
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in files} == before
    assert pki.seal_key.stat().st_mode & 0o077 == 0

    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    seal = x509.load_pem_x509_certificate(pki.seal_cert.read_bytes())
    tsa = x509.load_pem_x509_certificate(pki.tsa_cert.read_bytes())
    seal.verify_directly_issued_by(ca)
    tsa.verify_directly_issued_by(ca)
    assert seal.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Comune di Prova"
    assert (
        seal.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == "Comune di Prova - sigillo elettronico (TEST)"
    )
    usage = seal.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    key, cert, _ = pkcs12.load_key_and_certificates(pki.seal_p12.read_bytes(), b"segreto")
    assert cert == seal and key is not None


def _pki_in_child(directory: str) -> None:
    ensure_dev_pki(Path(directory), "Comune di Prova")


def test_dev_pki_concurrent_creation_is_consistent(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_pki_in_child, args=(str(tmp_path),)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    pki = ensure_dev_pki(tmp_path, "Comune di Prova")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(pki.seal_cert.read_bytes()).verify_directly_issued_by(ca)
    x509.load_pem_x509_certificate(pki.tsa_cert.read_bytes()).verify_directly_issued_by(ca)
    assert not list(tmp_path.glob(".*.tmp"))


# --------------------------------------------------------------------------- render


def test_rendered_pdf_is_tagged_pdfa3u_with_embedded_data(builders_pdf: bytes) -> None:
    reader = PdfFileReader(BytesIO(builders_pdf))
    root = reader.root

    xmp = _xmp(reader)
    assert _xmp_value(xmp, PDFAID, "part") == "3"
    assert _xmp_value(xmp, PDFAID, "conformance") == "U"
    assert str(root["/Lang"]) == "it"
    assert root["/MarkInfo"]["/Marked"] is True or str(root["/MarkInfo"]["/Marked"]) == "True"
    assert "/StructTreeRoot" in root
    assert str(root["/OutputIntents"][0]["/S"]) == "/GTS_PDFA1"

    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert str(names[0]) == DATA_ATTACHMENT_NAME
    filespec = names[1].get_object()
    assert str(filespec["/AFRelationship"]) == "/Data"
    assert str(filespec["/UF"]) == DATA_ATTACHMENT_NAME
    af = [ref.get_object() for ref in root["/AF"]]
    assert af == [filespec]  # listed once (WeasyPrint 70 lists it twice; render.py dedupes)
    stream = filespec["/EF"]["/F"].get_object()
    assert str(stream["/Subtype"]) == "/application/json"
    assert json.loads(stream.data.decode("utf-8")) == DATA


def _embedded_fonts(pdf: bytes) -> dict[str, dict]:
    """BaseFont (subset tag stripped) -> font descriptor, for every font of every page."""
    reader = PdfFileReader(BytesIO(pdf))
    fonts = {}
    for page_ref in reader.root["/Pages"]["/Kids"]:
        for font_ref in page_ref.get_object()["/Resources"]["/Font"].values():
            font = font_ref.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            fonts[str(descendant["/BaseFont"]).lstrip("/").split("+")[-1]] = descendant["/FontDescriptor"]
    return fonts


def test_rendered_pdf_embeds_titillium_web(builders_pdf: bytes) -> None:
    fonts = _embedded_fonts(builders_pdf)
    # Body text in the regular face, headings and labels in the bold one; nothing else needed.
    assert set(fonts) == {"Titillium-Web", "Titillium-Web-Bold"}, fonts
    for descriptor in fonts.values():
        assert "/FontFile2" in descriptor  # the TrueType program itself, as PDF/A requires
    xmp = _xmp(PdfFileReader(BytesIO(builders_pdf)))
    assert _xmp_value(xmp, PDFAID, "part") == "3"


def test_bundled_titillium_ships_with_its_licence() -> None:
    assert "SIL Open Font License, Version 1.1" in (BUNDLED_FONT_DIR / "OFL.txt").read_text(encoding="utf-8")
    names = {path.name for path in BUNDLED_FONT_DIR.glob("*.ttf")}
    for face in ("regular", "italic", "600", "700", "700italic"):
        assert f"titillium-web-v10-latin-ext_latin-{face}.ttf" in names


@pytest.mark.skipif(shutil.which("pdffonts") is None, reason="pdffonts (poppler-utils) not installed")
def test_glyph_missing_from_titillium_falls_back_to_dejavu(tmp_path: Path) -> None:
    # Titillium's files cover Latin only: an arrow and a Greek letter come from DejaVu Sans,
    # the rest of the same line stays Titillium.
    document = {**DOCUMENT,
                "sections": [{"title": "Note", "fields": [{"label": "Simboli", "value": "ε → Ω"}]}]}
    source = tmp_path / "domanda.pdf"
    source.write_bytes(render_pdf(document, DATA))
    listing = subprocess.run(["pdffonts", str(source)], check=True, capture_output=True, text=True).stdout
    names = {line.split()[0].split("+")[-1] for line in listing.splitlines()[2:]}
    assert names == {"Titillium-Web", "Titillium-Web-Bold", "DejaVu-Sans"}, listing
    # Every font embedded, subset, with a ToUnicode map (the "emb sub uni" columns).
    assert all(line.split()[-5:-2] == ["yes", "yes", "yes"] for line in listing.splitlines()[2:])


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")
def test_rendered_pdf_text(builders_pdf: bytes, tmp_path: Path) -> None:
    source = tmp_path / "domanda.pdf"
    source.write_bytes(builders_pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(source), "-"], check=True, capture_output=True, text=True
    ).stdout
    for expected in (
        "Comune di Clusone",
        "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve",
        DOCUMENT["title"],
        "Organizzazione",
        "Denominazione",
        "Cooperativa Sociale L'Àncora",
        "Codice fiscale",
        "Dichiarazioni",
        "Registro unico nazionale del Terzo settore",
        "Presentata il 21/11/2026 10:15",
        "MI-7K3Q-9ZP2",
        "Pagina 1 di 1",
    ):
        assert expected in text, expected


def test_render_long_free_text_answer_quickly() -> None:
    # Regression: with automatic table layout and overflow-wrap, WeasyPrint 70 took ~35 s
    # for one 400-word answer; the fixed table layout renders it in well under a second.
    document = {
        **DOCUMENT,
        "sections": [
            {
                "title": "Progetto",
                "fields": [
                    {"label": "Descrizione", "value": "parola " * 400 + "\nhttps://example.it/" + "x" * 200},
                ],
            }
        ],
    }
    started = time.perf_counter()
    pdf = render_pdf(document, DATA)
    assert time.perf_counter() - started < 10
    assert pdf.startswith(b"%PDF-")


def test_render_uses_bootstrap_italia_woff2_from_font_dir() -> None:
    # The same typeface as the web pages, straight from the files Bootstrap Italia vendors
    # (woff2, named by google-webfonts-helper), when DOCUMENTS_FONT_DIR points there.
    vendored = COMMON_STATIC / "vendor" / "bootstrap-italia" / "fonts" / "Titillium_Web"
    if not (vendored / "titillium-web-v10-latin-ext_latin-regular.woff2").exists():
        pytest.skip("Bootstrap Italia not vendored (scripts/vendor_assets.py)")
    fonts = _embedded_fonts(render_pdf(DOCUMENT, DATA, font_dir=vendored))
    assert set(fonts) == {"Titillium-Web", "Titillium-Web-Bold"}, fonts


def test_render_font_dir_without_titillium_uses_dejavu(tmp_path: Path) -> None:
    bold = BUNDLED_FONT_DIR / "titillium-web-v10-latin-ext_latin-700.ttf"
    (tmp_path / "TitilliumWeb-Bold.ttf").write_bytes(bold.read_bytes())  # no regular face: not usable
    fonts = _embedded_fonts(render_pdf(DOCUMENT, DATA, font_dir=tmp_path))
    assert set(fonts) == {"DejaVu-Sans", "DejaVu-Sans-Bold"}, fonts


def test_titillium_file_names_of_both_distributions(tmp_path: Path) -> None:
    for name in ("TitilliumWeb-Regular.ttf", "TitilliumWeb-SemiBoldItalic.ttf",
                 "titillium-web-v10-latin-ext_latin-italic.woff2",
                 "titillium-web-v10-latin-ext_latin-700.woff2",
                 "titillium-web-v10-latin-ext_latin-600italic.woff", "OFL.txt", "Lora-Regular.ttf"):
        (tmp_path / name).write_bytes(b"")
    faces = {(path.name, weight, style) for path, weight, style in _titillium_faces(tmp_path)}
    assert faces == {
        ("TitilliumWeb-Regular.ttf", 400, "normal"),
        ("TitilliumWeb-SemiBoldItalic.ttf", 600, "italic"),
        ("titillium-web-v10-latin-ext_latin-italic.woff2", 400, "italic"),
        ("titillium-web-v10-latin-ext_latin-700.woff2", 700, "normal"),
        ("titillium-web-v10-latin-ext_latin-600italic.woff", 600, "italic"),
    }


# --------------------------------------------------------------------------- seal


def test_seal_validates_against_test_ca(builders_pki, builders_pdf: bytes, builders_sealed: bytes) -> None:
    assert builders_sealed.startswith(builders_pdf)  # incremental update

    check = verify_seal(builders_sealed, [builders_pki.ca_cert])

    assert check.present and check.intact and check.valid and check.trusted and check.ok
    assert check.covers_whole_file
    assert "sigillo elettronico (TEST)" in check.signer_subject
    assert check.timestamp_valid is None


def test_seal_fails_after_one_byte_changes_in_signed_range(builders_pki, builders_sealed: bytes) -> None:
    reader = PdfFileReader(BytesIO(builders_sealed))
    start, length, _, _ = (int(v) for v in reader.embedded_signatures[0].byte_range)
    # Byte 10 is inside the header's binary comment line: the file still parses.
    position = 10
    assert start <= position < start + length
    tampered = bytearray(builders_sealed)
    tampered[position] ^= 0x01

    check = verify_seal(bytes(tampered), [builders_pki.ca_cert])

    assert check.present
    assert not check.intact
    assert not check.ok


def test_seal_is_not_trusted_with_another_root(builders_sealed: bytes, tmp_path: Path) -> None:
    other = ensure_dev_pki(tmp_path, "Altra organizzazione")

    check = verify_seal(builders_sealed, [other.ca_cert])

    assert check.intact and check.valid
    assert not check.trusted and not check.ok


def test_verify_seal_on_unsigned_pdf(builders_pki, builders_pdf: bytes) -> None:
    check = verify_seal(builders_pdf, [builders_pki.ca_cert])
    assert not check.present and not check.ok


def test_sealing_keeps_producer_and_xmp_aligned(builders_pdf: bytes, builders_sealed: bytes) -> None:
    original = PdfFileReader(BytesIO(builders_pdf))
    reader = PdfFileReader(BytesIO(builders_sealed))
    info = reader.trailer["/Info"]
    xmp = _xmp(reader)

    assert str(info["/Producer"]) == _xmp_value(xmp, PDF_NS, "Producer")
    # The PDF/A identification and the metadata objects are untouched by the increment.
    assert _xmp_value(xmp, PDFAID, "part") == "3"
    assert _xmp_value(xmp, PDFAID, "conformance") == "U"
    assert reader.root.raw_get("/Metadata") == original.root.raw_get("/Metadata")
    assert reader.trailer.raw_get("/Info") == original.trailer.raw_get("/Info")


def test_sealer_from_pem_matches_pkcs12(builders_pki, builders_pdf: bytes) -> None:
    sealer = PadesSealer.from_pem(builders_pki.seal_key, builders_pki.seal_cert, [builders_pki.ca_cert])
    from_p12 = PadesSealer.from_pkcs12(builders_pki.seal_p12, P12_PASSWORD)
    assert sealer.identity.cert == from_p12.identity.cert
    public_numbers = [s.identity.key.public_key().public_numbers() for s in (sealer, from_p12)]
    assert public_numbers[0] == public_numbers[1]
    assert "" not in sealer._reserved
    sealed = sealer.seal(builders_pdf, reason="Prova", location="Clusone")
    learned = sealer._reserved[""]
    # Second seal reuses the learned /Contents size instead of a dry-run estimate.
    sealed_again = sealer.seal(builders_pdf, reason="Prova", location="Clusone")
    assert sealer._reserved[""] == learned
    for document in (sealed, sealed_again):
        assert verify_seal(document, [builders_pki.ca_cert]).ok


def test_seal_recovers_from_a_too_small_learned_reservation(builders_pki, builders_pdf: bytes) -> None:
    sealer = PadesSealer.from_pkcs12(builders_pki.seal_p12, P12_PASSWORD)
    sealer._reserved[""] = 64  # far too small: the seal must fall back to pyHanko's estimate

    sealed = sealer.seal(builders_pdf, reason="Prova", location="Clusone")

    assert verify_seal(sealed, [builders_pki.ca_cert]).ok


def test_sealer_is_shared_across_threads(builders_pki, builders_sealer, builders_pdf: bytes) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        sealed = list(
            pool.map(
                lambda i: builders_sealer.seal(builders_pdf, reason=f"n. {i}", location="Clusone"), range(8)
            )
        )

    assert all(verify_seal(document, [builders_pki.ca_cert]).ok for document in sealed)


def test_seal_bt_with_local_timestamp_authority(
    builders_pki, builders_sealer, builders_pdf, builders_tsa_url
):
    sealed = builders_sealer.seal(
        builders_pdf, reason="Prova", location="Clusone", timestamper_url=builders_tsa_url
    )
    sealed_again = builders_sealer.seal(
        builders_pdf, reason="Prova", location="Clusone", timestamper_url=builders_tsa_url
    )

    for document in (sealed, sealed_again):
        check = verify_seal(document, [builders_pki.ca_cert])
        assert check.ok
        assert check.timestamp_valid is True
        assert check.timestamp_time is not None


def test_seal_bt_detects_tampering(builders_pki, builders_sealer, builders_pdf, builders_tsa_url):
    sealed = builders_sealer.seal(
        builders_pdf, reason="Prova", location="Clusone", timestamper_url=builders_tsa_url
    )
    tampered = bytearray(sealed)
    tampered[10] ^= 0x01

    check = verify_seal(bytes(tampered), [builders_pki.ca_cert])

    assert check.present and not check.intact and not check.ok


def test_timestamp_from_an_untrusted_tsa_is_not_valid(builders_pki, builders_sealer, builders_pdf,
                                                      tmp_path: Path):
    other = ensure_dev_pki(tmp_path, "Altra organizzazione")
    with LocalTsa(other.tsa_cert, other.tsa_key, other.ca_cert) as tsa:
        sealed = builders_sealer.seal(builders_pdf, reason="Prova", location="Clusone",
                                      timestamper_url=tsa.url)

    check = verify_seal(sealed, [builders_pki.ca_cert])

    assert check.intact and check.valid and check.trusted
    assert check.timestamp_valid is False and not check.ok


# --------------------------------------------------------------------------- CAdES


def test_cades_p7m_validates_and_detects_tampering(builders_pki, builders_sealer, builders_sealed,
                                                   builders_tsa_url, tmp_path: Path) -> None:
    p7m = builders_sealer.sign_cades(builders_sealed, timestamper_url=builders_tsa_url)

    check = verify_p7m(p7m, [builders_pki.ca_cert])
    assert check.ok and check.timestamped
    assert check.content == builders_sealed
    assert "sigillo elettronico (TEST)" in check.signer_subject

    at = p7m.index(builders_sealed[:64]) + 20
    tampered = bytearray(p7m)
    tampered[at] ^= 0x01
    assert not verify_p7m(bytes(tampered), [builders_pki.ca_cert]).ok

    other = ensure_dev_pki(tmp_path, "Altra organizzazione")
    untrusted = verify_p7m(p7m, [other.ca_cert])
    assert untrusted.intact and not untrusted.trusted
    assert verify_p7m(b"not a p7m", [builders_pki.ca_cert]).error


# --------------------------------------------------------------------------- Segnatura


def test_segnatura_validates_against_agid_schema(builders_pki, builders_sealer, builders_sealed) -> None:
    assert XSD.exists(), XSD
    primary, attachments, xml = _segnatura(builders_sealer, builders_sealed)

    validate_segnatura(xml, XSD)

    impronte = read_impronte(xml)
    assert impronte[primary.name] == _b64_sha256(builders_sealed)
    for attachment in attachments:
        assert impronte[attachment.name] == _b64_sha256(attachment.data)
    assert len(impronte) == 1 + len(attachments)

    root = etree.fromstring(xml)
    assert root.get(f"{{{PROT}}}versione") == "3.0.0"
    identificatore = root.find(f"{{{PROT}}}Intestazione/{{{PROT}}}Identificatore")
    assert identificatore.findtext(f"{{{PROT}}}NumeroRegistrazione") == "0000001"
    impronta = root.find(f".//{{{PROT}}}DocumentoPrimario/{{{PROT}}}Impronta")
    assert impronta.get(f"{{{PROT}}}algoritmo") == "SHA-256"
    assert root.find(f".//{{{PROT}}}DocumentoPrimario/{{{PROT}}}sigillatoElettronicamente") is not None
    assert root[-1].tag == "{http://www.w3.org/2000/09/xmldsig#}Signature"


def test_segnatura_xades_signature(builders_pki, builders_sealer, builders_sealed, tmp_path: Path) -> None:
    _, _, xml = _segnatura(builders_sealer, builders_sealed)

    assert verify_segnatura(xml, [builders_pki.ca_cert]).ok

    tampered = xml.replace(b"Cooperativa Sociale", b"Cooperativa Sociali", 1)
    assert tampered != xml
    assert not verify_segnatura(tampered, [builders_pki.ca_cert]).valid

    other = ensure_dev_pki(tmp_path, "Altra organizzazione")
    untrusted = verify_segnatura(xml, [other.ca_cert])
    assert untrusted.valid and not untrusted.trusted


def test_validate_segnatura_lists_violations(builders_sealer, builders_sealed) -> None:
    _, _, xml = _segnatura(builders_sealer, builders_sealed)
    broken = xml.replace(b"<prot:NumeroRegistrazione>0000001<", b"<prot:NumeroRegistrazione>12<", 1)

    with pytest.raises(SegnaturaError) as excinfo:
        validate_segnatura(broken, XSD)

    assert excinfo.value.errors
    assert "NumeroRegistrazione" in str(excinfo.value)


def test_segnatura_parsing_does_not_resolve_external_entities(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SEGRETO")
    xml = f"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY leak SYSTEM "{secret.as_uri()}">]>
<prot:SegnaturaInformatica xmlns:prot="{PROT}"><prot:Descrizione>
<prot:DocumentoPrimario prot:nomeFile="a.pdf"><prot:Impronta>&leak;</prot:Impronta></prot:DocumentoPrimario>
</prot:Descrizione></prot:SegnaturaInformatica>""".encode()

    assert "SEGRETO" not in read_impronte(xml).get("a.pdf", "")


def test_build_segnatura_rejects_incomplete_meta(builders_sealer, builders_sealed) -> None:
    primary = FileRef("domanda.pdf", "application/pdf", builders_sealed, role="primary")
    meta = {**META, "recipient": {**META["recipient"], "pec": ""}}
    with pytest.raises(SegnaturaError, match="pec"):
        build_segnatura(meta, primary, [], signer=builders_sealer)


# --------------------------------------------------------------------------- package


def test_package_manifest_and_message(builders_sealer, builders_sealed) -> None:
    primary, attachments, xml = _segnatura(builders_sealer, builders_sealed)

    files = assemble_package(
        primary=primary, attachments=attachments, segnatura=xml, meta=META, message_from=MESSAGE_FROM
    )

    assert [f.name for f in files] == [
        "domanda-0000001.pdf",
        "statuto.pdf",
        "bilancio.csv",
        "Segnatura.xml",
        "manifest.json",
        "message.eml",
    ]
    roles = ["primary", "attachment", "attachment", "segnatura", "manifest", "message"]
    assert [f.role for f in files] == roles
    by_name = {f.name: f for f in files}
    assert by_name["Segnatura.xml"].data == xml

    manifest = json.loads(by_name["manifest.json"].data)
    listed = {entry["name"]: entry for entry in manifest["files"]}
    assert set(listed) == set(by_name) - {"manifest.json"}
    for name, entry in listed.items():
        data = by_name[name].data
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
        assert entry["role"] == by_name[name].role
        assert entry["media_type"] == by_name[name].media_type
    assert manifest["registration"]["number"] == "0000001"

    message = email.message_from_bytes(by_name["message.eml"].data, policy=default_policy)
    assert message["To"].addresses[0].addr_spec == META["recipient"]["pec"]
    assert message["From"].addresses[0].addr_spec == MESSAGE_FROM
    assert message["Subject"] == META["subject"]
    assert message["Message-ID"] == manifest["message"]["message_id"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "REG-ONLINE n. 0000001 del 21/11/2026" in body
    attached = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert set(attached) == {"domanda-0000001.pdf", "statuto.pdf", "bilancio.csv", "Segnatura.xml"}
    assert attached["Segnatura.xml"] == by_name["Segnatura.xml"].data
    assert attached["domanda-0000001.pdf"] == builders_sealed
    assert b"\r\n" in by_name["message.eml"].data  # SMTP policy line endings


def test_package_size_limit(builders_sealer, builders_sealed) -> None:
    primary, attachments, xml = _segnatura(builders_sealer, builders_sealed)
    with pytest.raises(PackageTooLarge):
        assemble_package(
            primary=primary,
            attachments=attachments,
            segnatura=xml,
            meta=META,
            message_from=MESSAGE_FROM,
            max_message_bytes=10_000,
        )


# --------------------------------------------------------------------------- pipeline


def test_build_documents_end_to_end(builders_pki, builders_sealer) -> None:
    structlog_testing = pytest.importorskip("structlog.testing")
    payload = {"document": DOCUMENT, "data": DATA, "meta": META, "file_stem": "domanda-0000001"}

    with structlog_testing.capture_logs() as logs:
        files = build_documents(payload, sealer=builders_sealer, message_from=MESSAGE_FROM)

    events = [entry["event"] for entry in logs]
    assert events == ["pdf_generation_start", "pdf_generation_done", "seal_done", "package_assembled"]
    by_name = {f.name: f for f in files}
    assert list(by_name) == ["domanda-0000001.pdf", "Segnatura.xml", "metadata.xml", "manifest.json",
                             "message.eml"]
    assert by_name["metadata.xml"].role == "metadata"
    pdf = by_name["domanda-0000001.pdf"].data
    assert verify_seal(pdf, [builders_pki.ca_cert]).ok
    validate_segnatura(by_name["Segnatura.xml"].data, XSD)
    assert read_impronte(by_name["Segnatura.xml"].data) == {"domanda-0000001.pdf": _b64_sha256(pdf)}
    message = email.message_from_bytes(by_name["message.eml"].data, policy=default_policy)
    assert {part.get_filename() for part in message.iter_attachments()} == {"domanda-0000001.pdf",
                                                                            "Segnatura.xml"}


def test_metadata_xml_describes_the_primary_document(builders_sealer) -> None:
    payload = {"kind": "coprogramming_application", "document": DOCUMENT, "data": DATA, "meta": META,
               "file_stem": "domanda-0000001"}
    files = {f.name: f for f in build_documents(payload, sealer=builders_sealer, message_from=MESSAGE_FROM)}
    root = etree.fromstring(files["metadata.xml"].data)
    ns = {"m": root.nsmap[None]}

    def text(path: str) -> str:
        return root.findtext(path, namespaces=ns)

    assert text("m:IdDoc/m:ImprontaCrittografica") == _b64_sha256(files["domanda-0000001.pdf"].data)
    assert text("m:ModalitaDiFormazione") == "c"
    assert text("m:TipologiaDocumentale") == "Istanza di partecipazione alla co-programmazione"
    assert text("m:ChiaveDescrittiva/m:Oggetto") == META["subject"]
    assert text("m:DatiDiRegistrazione/m:NumeroDocumento") == "0000001"
    roles = {r.findtext("m:TipoRuolo", namespaces=ns): r for r in root.iterfind("m:Soggetti/m:Ruolo", ns)}
    assert set(roles) == {"Mittente", "Destinatario", "Produttore"}
    assert roles["Mittente"].findtext(".//m:CodiceFiscale", namespaces=ns) == "91234567890"
    assert roles["Destinatario"].findtext(".//m:CodiceIPA", namespaces=ns) == "c_c800"
    assert text("m:Verifica/m:SigillatoElettronicamente") == "true"
    assert text("m:Verifica/m:MarcaturaTemporale") == "false"
    assert text("m:IdentificativoDelFormato/m:Formato") == "PDF/A-3u"
    manifest = json.loads(files["manifest.json"].data)
    assert "metadata.xml" in {entry["name"] for entry in manifest["files"]}


def test_a_recipient_wanting_cades_gets_a_p7m(builders_pki, builders_sealer, builders_tsa_url) -> None:
    meta = {**META, "recipient": {**META["recipient"], "cades": True}}
    payload = {"document": DOCUMENT, "data": DATA, "meta": meta, "file_stem": "domanda-0000001"}

    files = {f.name: f for f in build_documents(payload, sealer=builders_sealer, message_from=MESSAGE_FROM,
                                                 timestamper_url=builders_tsa_url)}

    p7m = files["domanda-0000001.pdf.p7m"]
    assert (p7m.role, p7m.media_type) == ("attachment", "application/pkcs7-mime")
    check = verify_p7m(p7m.data, [builders_pki.ca_cert])
    assert check.ok and check.timestamped
    assert check.content == files["domanda-0000001.pdf"].data
    validate_segnatura(files["Segnatura.xml"].data, XSD)
    assert read_impronte(files["Segnatura.xml"].data)["domanda-0000001.pdf.p7m"] == _b64_sha256(p7m.data)
    message = email.message_from_bytes(files["message.eml"].data, policy=default_policy)
    assert "domanda-0000001.pdf.p7m" in {part.get_filename() for part in message.iter_attachments()}
