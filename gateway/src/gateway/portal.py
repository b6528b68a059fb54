"""What the portal offers: the public services, and the operator areas by role."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ambito_common.identity import (
    AMBITO_ADMIN,
    COMUNE_OPERATOR,
    PROTOCOL_OFFICER,
    SOCIAL_WORKER,
    Identity,
)

ROLE_LABELS = {
    AMBITO_ADMIN: "Amministratore dell'Ambito",
    PROTOCOL_OFFICER: "Addetto al protocollo",
    COMUNE_OPERATOR: "Operatore comunale",
    SOCIAL_WORKER: "Assistente sociale",
}


@dataclass(frozen=True)
class Area:
    title: str
    description: str
    roles: tuple[str, ...]
    href: str


PUBLIC_SERVICES = (
    Area("Avvisi e domande", "Gli avvisi pubblici dell'Ambito, le domande da presentare online e lo stato "
         "delle domande presentate.", (), "/intake/avvisi"),
    Area("Voucher per l'assistenza domiciliare (SAD)", "Chiedere il voucher sociale per l'assistenza a "
         "domicilio di una persona fragile, allegando ISEE e certificati.", (), "/intake/sad/nuova"),
    Area("Sportello di Tutela Giuridica", "Prenotare un appuntamento su amministrazione di sostegno, tutela "
         "e curatela, di persona o per telefono.", (), "/intake/sportello"),
    Area("Stato di una domanda", "Seguire una domanda o una richiesta con il codice di tracciamento "
         "ricevuto.", (), "/intake/domande"),
)

AREAS = (
    Area("Protocollo", "Pacchetti ricevuti da protocollare e numeri di protocollo da registrare.",
         (PROTOCOL_OFFICER,), "/protocollo/"),
    Area("Buoni e budget", "Budget per comune e per fondo, movimenti del registro, buoni e rimborsi.",
         (COMUNE_OPERATOR, AMBITO_ADMIN), "/vouchers/budget"),
    Area("Buoni e ore erogate", "Buoni di assistenza domiciliare del comune, lista d'attesa, ore mensili "
         "(anche da file CSV) e chiusura dei buoni.", (COMUNE_OPERATOR, AMBITO_ADMIN), "/vouchers/buoni"),
    Area("Richieste di rimborso", "Richieste di rimborso a consuntivo dei comuni, fatture, decisioni e "
         "riparto proporzionale.", (COMUNE_OPERATOR, AMBITO_ADMIN), "/vouchers/rimborsi"),
    Area("Assegnazioni ai comuni", "Riparto dei fondi tra i comuni, riassegnazioni e riporti al periodo "
         "successivo.", (AMBITO_ADMIN,), "/vouchers/assegnazioni"),
    Area("Valutazioni e piani assistenziali", "Richieste di voucher SAD del comune: valutazione, PAI, "
         "decisione.", (SOCIAL_WORKER,), "/intake/servizi-sociali/sad"),
    Area("Agenda dello sportello", "Appuntamenti dello Sportello di Tutela Giuridica, assenze e chiusure.",
         (AMBITO_ADMIN,), "/intake/sportello/agenda"),
)


def areas_for(identity: Identity | None) -> list[Area]:
    """The areas this operator may open; the Ambito's administrators see them all."""
    if identity is None:
        return []
    if AMBITO_ADMIN in identity.roles:
        return list(AREAS)
    return [area for area in AREAS if identity.has_any(area.roles)]


def profile_label(identity: Identity, ambito: Mapping[str, Any]) -> str:
    """"Operatore comunale, Clusone": the roles in Italian, and the comune when there is one."""
    parts = [ROLE_LABELS.get(role, role) for role in identity.roles]
    parts += [c["name"] for c in ambito["comuni"] if c["code"] == identity.comune]
    return ", ".join(parts)
