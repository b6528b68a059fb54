"""Shared foundation of the Ambito platform.

Every service builds on the same small pieces: typed settings read from the
environment, a SQLAlchemy engine and session per request, identity tokens,
a Celery app, the transactional outbox, domain errors mapped to HTTP in one
place, structured logs carrying a request id, and the base templates.
"""
