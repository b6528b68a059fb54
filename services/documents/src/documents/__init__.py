"""Documents: PDF/A, electronic seals, protocol packages, the protocol inbox and delivery.

``documents.builders`` is the pure library that turns a payload into files (PDF/A,
PAdES B-T seal, optional CAdES .p7m, Segnatura.xml, metadata.xml, manifest, message);
the rest of the package is the service around it: routing by territory (``routing``),
the signer plugins (``signers``), the build and delivery tasks with the inbox and PEC
backends (``delivery``), the replies that move a package (``replies``, uploaded or read
from the PEC mailbox by ``pec_inbox``), the local timestamp authority of embedded mode
and tests (``tsa_server``), the package store and the protocol officer's inbox (pages
and API).
"""
