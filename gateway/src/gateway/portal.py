"""The operator areas the portal offers, by role.

An area without ``href`` belongs to a later issue: the portal shows it as
coming soon, so operators see what the platform will do for them.
"""

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
    href: str | None = None


AREAS = (
    Area("Protocollo", "Pacchetti ricevuti da protocollare e numeri di protocollo da registrare.",
         (PROTOCOL_OFFICER,), "/protocollo/"),
    Area("Buoni e budget del comune", "Buoni sociali, ore erogate e richieste di rimborso del comune.",
         (COMUNE_OPERATOR,)),
    Area("Valutazioni e piani assistenziali", "Domande da valutare, visite domiciliari e PAI.",
         (SOCIAL_WORKER,)),
    Area("Amministrazione dell'Ambito", "Avvisi, fondi e riparti, approvazione dei rimborsi, agenda dello "
         "sportello.", (AMBITO_ADMIN,)),
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
