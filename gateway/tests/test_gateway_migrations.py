"""The migrations build exactly the tables the models describe, and can be undone."""

from __future__ import annotations

import pytest
from alembic import command
from ambito_common.db import alembic_config
from ambito_common.testing import fresh_postgres_database
from gateway.runtime import MIGRATIONS, Runtime


def _check(url: str) -> None:
    config = alembic_config(MIGRATIONS, url)
    command.check(config)  # raises if the models and the migrated schema differ
    command.downgrade(config, "base")


def test_migrations_match_the_models_on_sqlite(gateway_runtime: Runtime):
    _check(gateway_runtime.settings.database_url)


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgresql(gateway_environ, gateway_build):
    with fresh_postgres_database("gateway") as url:
        runtime = gateway_build(gateway_environ(GATEWAY_DATABASE_URL=url))
        runtime.session_factory.kw["bind"].dispose()
        _check(url)
