"""A citizen's SAD request with uploads reaches the protocol of the beneficiary's comune.

Through the running embedded platform: the request is filed, documents are
uploaded and the request submitted; the documents worker routes the package
to the comune of residence and fingerprints every uploaded file in the sealed
Segnatura.xml, byte for byte what the citizen sent.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pytest
import requests
from documents.builders import read_impronte

from tests.harness import embedded_platform
from tests.journey import check_package, conferma_for, fetch

pytestmark = pytest.mark.slow

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAghEp4wAAAABJRU5ErkJggg==")


def sad_request() -> dict:
    return {
        "applicant": {"first_name": "Luigi", "last_name": "Verdi", "tax_code": "VRDLGU70M01C800H",
                      "email": "luigi.verdi@example.it", "phone": "333 7654321", "relation": "family"},
        "beneficiary": {"first_name": "Giovanna", "last_name": "Berti", "tax_code": "BRTGNN40A41C800C",
                        "birth_date": "1940-01-01", "comune": "schilpario", "address": "Via Manzoni 3",
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


def test_sad_request_with_uploads_reaches_the_comune_of_residence(tmp_path):
    with embedded_platform(tmp_path) as platform:
        created = requests.post(platform.url + "/api/intake/sad-requests", json=sad_request(), timeout=30)
        assert created.status_code == 201, created.text
        code = created.json()["tracking_code"]
        uploads = {}
        for name, content, kind in (("isee.pdf", PDF, "isee"), ("documento.png", PNG, "identity")):
            answer = requests.post(f"{platform.url}/api/intake/sad-requests/{code}/attachments",
                                   files={"file": (name, content)}, data={"kind": kind}, timeout=30)
            assert answer.status_code == 201, answer.text
            assert answer.json()["sha256"] == hashlib.sha256(content).hexdigest()
            uploads[answer.json()["name"]] = content
        submitted = requests.post(f"{platform.url}/api/intake/sad-requests/{code}/submit", timeout=30)
        assert submitted.status_code == 200, submitted.text

        package_id = platform.wait_status(code, "delivered")["package_id"]
        officer = {"Authorization": f"Bearer {platform.token('protocollo')}"}
        package = requests.get(f"{platform.url}/api/documents/packages/{package_id}", headers=officer,
                               timeout=10).json()
        assert "schilpario" in package["recipient"]["pec"].lower()

        files = {f["name"]: (f, fetch(platform, officer, package_id, f["name"])) for f in package["files"]}
        check_package(files, platform.seal_ca, recipient_pec=package["recipient"]["pec"])
        attached = {name: data for name, (listing, data) in files.items() if listing["role"] == "attachment"}
        assert attached == uploads
        impronte = read_impronte(files["Segnatura.xml"][1])
        for name, data in uploads.items():
            assert impronte[name] == base64.b64encode(hashlib.sha256(data).digest()).decode()

        # The comune's protocol answers with a Conferma.xml: the citizen's tracking shows its number.
        today = dt.datetime.now(ZoneInfo("Europe/Rome")).date().isoformat()
        reply = requests.post(platform.url + "/api/documents/replies", headers=officer, timeout=30,
                              data=conferma_for(files["Segnatura.xml"][1], "0004321", today))
        assert reply.status_code == 200, reply.text
        assert reply.json()["package_id"] == package_id
        registered = platform.wait_status(code, "registered")
        assert registered["protocol"] == {"number": "0004321", "date": today}
