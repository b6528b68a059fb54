"""metadata.xml: the Allegato 5 metadata of the primary document, for conservation.

The AgID Linee guida sulla formazione, gestione e conservazione dei documenti informatici,
Allegato 5 ("Metadati", as amended by Determinazione 371/2021), list the metadata every
documento amministrativo informatico must carry into conservation. AgID publishes no XML
schema for them, so the element names are the Allegato's own, in this platform's namespace::

    DocumentoAmministrativoInformatico
      IdDoc/ImprontaCrittografica @algoritmo=SHA-256, IdDoc/Identificativo
      ModalitaDiFormazione          c: presentation of data through an online form
      TipologiaDocumentale
      DatiDiRegistrazione           TipologiaDiFlusso E, TipoRegistro, our registration
      Soggetti/Ruolo*               Mittente (submitter), Destinatario (AOO),
                                    Produttore (the Ambito's register)
      ChiaveDescrittiva/Oggetto
      Allegati                      NumeroAllegati, IndiceAllegati (name + digest)
      Classificazione
      Riservato
      IdentificativoDelFormato      Formato (PDF/A-3u), ProdottoSoftware
      Verifica                      FirmatoDigitalmente, SigillatoElettronicamente,
                                    MarcaturaTemporale, ConformitaCopieImmagine...
      NomeDelDocumento, VersioneDelDocumento, TempoDiConservazione
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from .files import FileRef
from .segnatura import DEFAULT_CLASSIFICA, registration_number

__all__ = ["METADATA_NAME", "METADATA_NS", "build_metadata"]

METADATA_NAME = "metadata.xml"
METADATA_NS = "urn:ambito:documents:metadati-allegato5:1"
#: Allegato 5, ModalitaDiFormazione (c): "memorizzazione su supporto informatico in formato
#: digitale delle informazioni risultanti [...] dalla presentazione telematica di dati
#: attraverso moduli o formulari resi disponibili all'utente".
MODALITA_DI_FORMAZIONE = "c"
#: What each kind of submission is, as the Allegato's TipologiaDocumentale names it.
TIPOLOGIE = {
    "coprogramming_application": "Istanza di partecipazione alla co-programmazione",
    "citizen_request": "Istanza di parte",
}
FORMAT = "PDF/A-3u"
SOFTWARE = "Piattaforma servizi sociali d'Ambito (WeasyPrint, pyHanko)"


def _el(parent: etree._Element, name: str, text: Any = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{METADATA_NS}}}{name}", {k: str(v) for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _soggetto(parent: etree._Element, role: str, kind: str, details: Mapping[str, Any]) -> None:
    ruolo = _el(parent, "Ruolo")
    _el(ruolo, "TipoRuolo", role)
    soggetto = _el(ruolo, kind)
    for key, name in (("name", "Denominazione"), ("tax_code", "CodiceFiscale"), ("ipa_code", "CodiceIPA"),
                      ("aoo_code", "CodiceAOO"), ("aoo_name", "DenominazioneAOO"),
                      ("pec", "IndirizziDigitaliDiRiferimento"), ("email", "IndirizzoEmail")):
        if details.get(key):
            _el(soggetto, name, details[key])


def build_metadata(
    kind: str,
    meta: Mapping[str, Any],
    primary: FileRef,
    attachments: list[FileRef],
    *,
    retention: str = "illimitato",
) -> FileRef:
    """The metadata.xml of ``primary`` (role ``metadata``), from the same ``meta`` as the
    Segnatura; ``attachments`` are indexed by name and digest."""
    registration = meta.get("registration") or {}
    root = etree.Element(f"{{{METADATA_NS}}}DocumentoAmministrativoInformatico",
                         nsmap={None: METADATA_NS})
    id_doc = _el(root, "IdDoc")
    _el(id_doc, "ImprontaCrittografica", primary.sha256_b64, algoritmo="SHA-256")
    _el(id_doc, "Identificativo", primary.name)
    _el(root, "ModalitaDiFormazione", MODALITA_DI_FORMAZIONE)
    _el(root, "TipologiaDocumentale", TIPOLOGIE.get(kind, kind))

    dati = _el(root, "DatiDiRegistrazione")
    _el(dati, "TipologiaDiFlusso", "E")
    _el(dati, "TipoRegistro", "Repertorio/Registro")
    _el(dati, "CodiceRegistro", registration.get("register_code", ""))
    _el(dati, "NumeroDocumento", registration_number(registration.get("number", "")))
    _el(dati, "DataRegistrazione", registration.get("date", ""))

    soggetti = _el(root, "Soggetti")
    _soggetto(soggetti, "Mittente", "PersonaGiuridica", meta.get("sender") or {})
    _soggetto(soggetti, "Destinatario", "AmministrazionePubblica", meta.get("recipient") or {})
    _soggetto(soggetti, "Produttore", "AmministrazionePubblica", {
        "name": registration.get("name"), "ipa_code": registration.get("ipa_code"),
        "aoo_code": registration.get("aoo_code"), "aoo_name": registration.get("aoo_name")})

    chiave = _el(root, "ChiaveDescrittiva")
    _el(chiave, "Oggetto", meta.get("subject") or "")

    allegati = _el(root, "Allegati")
    _el(allegati, "NumeroAllegati", len(attachments))
    for attachment in attachments:
        indice = _el(allegati, "IndiceAllegati")
        _el(indice, "IdDoc", attachment.name)
        _el(indice, "ImprontaCrittografica", attachment.sha256_b64, algoritmo="SHA-256")
        if attachment.description:
            _el(indice, "Descrizione", attachment.description)

    classifica = meta.get("classifica") or DEFAULT_CLASSIFICA
    classificazione = _el(root, "Classificazione")
    _el(classificazione, "IndiceDiClassificazione", classifica["codice"])
    _el(classificazione, "Descrizione", classifica["denominazione"])
    _el(root, "Riservato", "true")  # applications carry personal data
    formato = _el(root, "IdentificativoDelFormato")
    _el(formato, "Formato", FORMAT)
    _el(formato, "ProdottoSoftware", SOFTWARE)
    verifica = _el(root, "Verifica")
    _el(verifica, "FirmatoDigitalmente", "false")
    _el(verifica, "SigillatoElettronicamente", _flag(primary.sealed))
    _el(verifica, "MarcaturaTemporale", _flag(primary.timestamped))
    _el(verifica, "ConformitaCopieImmagineSuSupportoInformatico", "false")
    _el(root, "NomeDelDocumento", primary.name)
    _el(root, "VersioneDelDocumento", "1")
    _el(root, "TempoDiConservazione", retention)
    etree.indent(root, space="  ")
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return FileRef(METADATA_NAME, "application/xml", data, role="metadata",
                   description="Metadati del documento principale (Allegato 5)")
