"""Documents: PDF/A, electronic seals, protocol packages, the protocol inbox and delivery.

``documents.builders`` is the pure library that turns a payload into files (PDF/A,
PAdES seal, Segnatura.xml, manifest, message); the rest of the package is the service
around it: the build and delivery tasks, the package store and the protocol officer's
inbox (pages and API).
"""
