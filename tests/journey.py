"""The co-programming journey, walked through HTTP against any running platform.

An organisation applies; the documents service builds and seals the package;
the protocol officer inspects and downloads it and records the number; the
organisation sees the number. Every document of the package is checked against
the standard it claims to meet.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import hashlib
import io
import json
import uuid
import zipfile
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from ambito_common.testing import SHARED_DIR
from documents.builders import read_impronte, validate_segnatura, verify_seal

from tests.harness import Platform

SEGNATURA_XSD = SHARED_DIR / "standards" / "agid-protocollo" / "segnatura_protocollo.xsd"
LEAD_PEC = "protocollo@pec.comune.clusone.bg.it"
PROTOCOL_NUMBER = "2026/0012345"


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAghEp4wAAAABJRU5ErkJggg==")


def sad_request() -> dict[str, Any]:
    """A valid SAD voucher request (API shape) for a beneficiary living in Clusone."""
    return {
        "applicant": {"first_name": "Luigi", "last_name": "Verdi", "tax_code": "VRDLGU70M01C800H",
                      "email": "luigi.verdi@example.it", "phone": "333 7654321", "relation": "family"},
        "beneficiary": {"first_name": "Giovanna", "last_name": "Berti", "tax_code": "BRTGNN40A41C800C",
                        "birth_date": "1940-01-01", "comune": "clusone", "address": "Via Manzoni 3",
                        "phone": "0346 55001"},
        "condition": {"category": "elderly", "invalidity_percent": 100, "law104_severe": True,
                      "attendance_allowance": True},
        "isee": {"value_cents": 950000, "dsu_protocol": "INPS-ISEE-2026-012345678-00",
                 "expires_on": f"{dt.date.today().year + 1}-01-15"},
        "needs": ["personal_care", "meals"],
        "current_services": "Pasti a domicilio",
        "preferred_provider": "coop-sociale-scalve",
        "self_declaration": True, "health_data_consent": True,
    }


def walk_journey(platform: Platform) -> dict[str, Any]:
    request_id = uuid.uuid4().hex
    receipt = platform.submit(request_id=request_id)
    assert receipt["status"] == "received"
    code = receipt["tracking_code"]

    delivered = platform.wait_status(code, "delivered")
    package_id = delivered["package_id"]
    assert package_id and delivered["protocol"] is None

    officer = {"Authorization": f"Bearer {platform.token('protocollo')}"}
    inbox = requests.get(platform.url + "/api/documents/packages?status=delivered",
                         headers=officer, timeout=10)
    assert inbox.status_code == 200, inbox.text
    package = next(p for p in inbox.json() if p["id"] == package_id)
    assert package["recipient"]["pec"] == LEAD_PEC

    files = {f["name"]: (f, fetch(platform, officer, package_id, f["name"])) for f in package["files"]}
    check_package(files, platform.seal_ca)

    archive = requests.get(f"{platform.url}/api/documents/packages/{package_id}/download",
                           headers=officer, timeout=30)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
        assert sorted(bundle.namelist()) == sorted(files)

    today = dt.datetime.now(ZoneInfo("Europe/Rome")).date().isoformat()
    registration = requests.post(
        f"{platform.url}/api/documents/packages/{package_id}/registration", headers=officer,
        json={"number": PROTOCOL_NUMBER, "date": today}, timeout=10)
    assert registration.status_code == 200, registration.text
    registered = platform.wait_status(code, "registered")
    assert registered["protocol"] == {"number": PROTOCOL_NUMBER, "date": today}
    return {"tracking_code": code, "package_id": package_id, "files": files,
            "application_id": receipt["id"], "request_id": request_id}


def fetch(platform: Platform, headers: dict[str, str], package_id: str, name: str) -> bytes:
    response = requests.get(f"{platform.url}/api/documents/packages/{package_id}/files/{name}",
                            headers=headers, timeout=30)
    assert response.status_code == 200, (name, response.status_code)
    return response.content


def check_package(files: dict[str, tuple[dict[str, Any], bytes]], ca: Path,
                  recipient_pec: str = LEAD_PEC) -> None:
    """Every file as the standards want it; ``files`` maps name → (listing, bytes)."""
    for listing, data in files.values():
        assert listing["sha256"] == hashlib.sha256(data).hexdigest(), listing["name"]
        assert listing["size"] == len(data)
    by_role = {listing["role"]: (name, data) for name, (listing, data) in files.items()}
    assert set(by_role) >= {"primary", "segnatura", "manifest", "message"}

    primary_name, pdf = by_role["primary"]
    assert primary_name.endswith(".pdf") and pdf.startswith(b"%PDF")
    seal = verify_seal(pdf, [ca])
    assert seal.intact and seal.valid and seal.trusted

    segnatura_name, segnatura = by_role["segnatura"]
    assert segnatura_name == "Segnatura.xml"
    validate_segnatura(segnatura, SEGNATURA_XSD)
    impronte = read_impronte(segnatura)
    assert impronte[primary_name] == _b64_sha256(pdf)

    manifest = json.loads(by_role["manifest"][1])
    for entry in manifest["files"]:
        data = files[entry["name"]][1]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)

    message = email.message_from_bytes(by_role["message"][1], policy=policy.default)
    assert recipient_pec in message["To"]
    attached = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert attached["Segnatura.xml"] == segnatura or attached["Segnatura.xml"] == segnatura.decode()
    assert attached[primary_name] == pdf


def embedded_data(pdf: bytes) -> Any:
    """The ``dati.json`` a receiving system reads out of the sealed PDF, without retyping anything."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    names = PdfFileReader(io.BytesIO(pdf)).root["/Names"]["/EmbeddedFiles"]["/Names"]
    found = {str(names[i]): names[i + 1] for i in range(0, len(names), 2)}
    return json.loads(found["dati.json"]["/EF"]["/F"].get_object().data)


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def conferma_for(segnatura: bytes, number: str, date: str) -> bytes:
    """The Conferma.xml a recipient's protocol would send back for our ``segnatura``.

    Its own registration is ``number``/``date``; ``MessaggioRicevuto`` repeats our
    Identificatore, which is how the reply finds its package.
    """
    from lxml import etree

    prot = "http://www.agid.gov.it/protocollo/"
    ours = etree.fromstring(segnatura).find(f".//{{{prot}}}Identificatore")
    values = {child.tag.split("}")[1]: child.text for child in ours}

    def identificatore(register: str, value: str, when: str) -> str:
        return (f"<pec:Identificatore><prot:CodiceAmministrazione>{values['CodiceAmministrazione']}"
                f"</prot:CodiceAmministrazione><prot:CodiceAOO>{values['CodiceAOO']}</prot:CodiceAOO>"
                f"<prot:CodiceRegistro>{register}</prot:CodiceRegistro><prot:NumeroRegistrazione>{value}"
                f"</prot:NumeroRegistrazione><prot:DataRegistrazione>{when}</prot:DataRegistrazione>"
                f"</pec:Identificatore>")

    received = identificatore(values["CodiceRegistro"], values["NumeroRegistrazione"],
                              values["DataRegistrazione"])
    return (f'<?xml version="1.0"?><pec:ConfermaRicezione xmlns:pec="http://www.agid.gov.it/protocollo/pec/" '
            f'xmlns:prot="{prot}" pec:versione="3.0.0" pec:lang="it">'
            f"{identificatore('PROT_GENERALE', number, date)}<pec:MessaggioRicevuto>{received}"
            f"</pec:MessaggioRicevuto></pec:ConfermaRicezione>").encode()
