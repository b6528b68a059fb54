"""A citizen's SAD request with uploads reaches the protocol of the beneficiary's comune.

Through the running embedded platform: the request is filed, documents are
uploaded and the request submitted; the documents worker routes the package
to the comune of residence and fingerprints every uploaded file in the sealed
Segnatura.xml, byte for byte what the citizen sent. When the social worker asks
for more documents, the citizen's answer travels the same road as a supplement
("Integrazione documentale") with a number and a protocol of its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pytest
import requests
from documents.builders import read_impronte

from tests.harness import embedded_platform, wait_until
from tests.journey import PDF, PNG, check_package, conferma_for, embedded_data, fetch, sad_request

pytestmark = pytest.mark.slow

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
        assert "clusone" in package["recipient"]["pec"].lower()

        files = {f["name"]: (f, fetch(platform, officer, package_id, f["name"])) for f in package["files"]}
        check_package(files, platform.seal_ca, recipient_pec=package["recipient"]["pec"])
        attached = {name: data for name, (listing, data) in files.items() if listing["role"] == "attachment"}
        assert attached == uploads
        primary = next(data for listing, data in files.values() if listing["role"] == "primary")
        assert embedded_data(primary) == sad_request()  # dati.json is the submission, field for field
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

        # The social worker asks for a document; the citizen answers through the tracking code.
        worker = {"Authorization": f"Bearer {platform.token('as.clusone')}"}
        case = f"{platform.url}/api/intake/sad-requests/{created.json()['id']}"
        asked = requests.post(case + "/request-documents", headers=worker, timeout=30,
                              json={"message": "Verbale di invalidità civile"})
        assert asked.status_code == 200, asked.text
        verbale = PDF.replace(b"trailer", b"% verbale\ntrailer")
        answer = requests.post(f"{platform.url}/api/intake/sad-requests/{code}/attachments",
                               files={"file": ("verbale.pdf", verbale)}, data={"kind": "certificate"},
                               timeout=30)
        assert answer.status_code == 201, answer.text
        sent = requests.post(f"{platform.url}/api/intake/sad-requests/{code}/documents-sent", timeout=30)
        assert sent.status_code == 200, sent.text

        def supplement_step(step: str) -> bool:
            history = requests.get(case, headers=worker, timeout=10).json()["history"]
            return any(h["status"] == f"supplement_{step}" for h in history)

        wait_until(lambda: supplement_step("delivered"), timeout=90, what="the supplement to be delivered")
        (listed,) = requests.get(f"{platform.url}/api/documents/packages", params={"q": "integrazione"},
                                 headers=officer, timeout=10).json()
        supplement = requests.get(f"{platform.url}/api/documents/packages/{listed['id']}", headers=officer,
                                  timeout=10).json()
        assert supplement["id"] != package_id and "clusone" in supplement["recipient"]["pec"].lower()
        files = {f["name"]: (f, fetch(platform, officer, supplement["id"], f["name"]))
                 for f in supplement["files"]}
        check_package(files, platform.seal_ca, recipient_pec=supplement["recipient"]["pec"])
        attached = {name: data for name, (listing, data) in files.items() if listing["role"] == "attachment"}
        assert attached == {"verbale.pdf": verbale}
        impronte = read_impronte(files["Segnatura.xml"][1])
        assert impronte["verbale.pdf"] == base64.b64encode(hashlib.sha256(verbale).digest()).decode()

        reply = requests.post(platform.url + "/api/documents/replies", headers=officer, timeout=30,
                              data=conferma_for(files["Segnatura.xml"][1], "0004400", today))
        assert reply.status_code == 200, reply.text
        wait_until(lambda: supplement_step("registered"), timeout=90, what="the supplement to be registered")
        assert platform.tracking(code)["protocol"] == {"number": "0004321", "date": today}  # unchanged
