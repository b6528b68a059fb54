"""Operator accounts: the demo seed, creating real accounts, password rehashing."""

from __future__ import annotations

import pytest
from ambito_common.errors import InvalidInput
from argon2 import PasswordHasher
from gateway.models import User
from gateway.services import DemoDisabled, create_user, seed_demo_accounts
from gateway.settings import Settings
from sqlalchemy import select

STRONG = "una password lunga abbastanza"


def _users(runtime) -> dict[str, User]:  # type: ignore[no-untyped-def]
    with runtime.session_factory() as session:
        return {user.username: user for user in session.scalars(select(User))}


def test_demo_accounts_cover_every_kind_of_operator(gateway_runtime):
    users = _users(gateway_runtime)

    assert {name: (u.roles, u.comune) for name, u in users.items()} == {
        "admin": (["ambito_admin"], None),
        "protocollo": (["protocol_officer"], None),
        "clusone": (["comune_operator"], "clusone"),
        "as.clusone": (["social_worker"], "clusone"),
    }
    assert all(user.active and user.password_hash.startswith("$argon2id$") for user in users.values())


def test_seeding_again_changes_nothing(gateway_runtime):
    before = _users(gateway_runtime)
    platform = gateway_runtime.settings.platform
    with gateway_runtime.session_factory.begin() as session:
        assert seed_demo_accounts(session, "altra", platform=platform) == []

    after = _users(gateway_runtime)
    assert {n: u.password_hash for n, u in after.items()} == {n: u.password_hash for n, u in before.items()}


def test_seed_refuses_outside_demo_mode(gateway_runtime, gateway_environ):
    not_demo = Settings.from_env(gateway_environ(AMBITO_DEMO="false")).platform

    with gateway_runtime.session_factory() as session, pytest.raises(DemoDisabled):
        seed_demo_accounts(session, "demo", platform=not_demo)


def test_created_user_can_log_in(gateway_runtime, gateway_app, gateway_login, gateway_verifier):
    with gateway_runtime.session_factory.begin() as session:
        create_user(session, "M.Rossi", STRONG, ["social_worker"], comune="rovetta",
                    display_name="Maria Rossi", platform=gateway_runtime.settings.platform)

    with gateway_app.test_client() as client:
        body = gateway_login(client, "m.rossi", STRONG).get_json()
    identity = gateway_verifier.verify(body["access_token"])
    assert identity.username == "m.rossi" and identity.display_name == "Maria Rossi"
    assert identity.roles == ("social_worker",) and identity.comune == "rovetta"


@pytest.mark.parametrize(("username", "password", "roles", "comune", "field"), [
    ("nuovo", STRONG, ["comune_operator"], None, "comune"),
    ("nuovo", STRONG, ["social_worker"], "bergamo", "comune"),
    ("nuovo", STRONG, ["ambito_admin"], "clusone", "comune"),
    ("nuovo", STRONG, ["sindaco"], None, "roles"),
    ("nuovo", STRONG, [], None, "roles"),
    ("admin", STRONG, ["ambito_admin"], None, "username"),
    ("con spazio", STRONG, ["ambito_admin"], None, "username"),
    ("nuovo", "corta", ["ambito_admin"], None, "password"),
])
def test_create_user_rejects_inconsistent_accounts(gateway_runtime, username, password, roles, comune, field):
    with gateway_runtime.session_factory() as session, pytest.raises(InvalidInput) as caught:
        create_user(session, username, password, roles, comune=comune,
                    platform=gateway_runtime.settings.platform)

    assert list(caught.value.errors) == [field]


def test_login_rehashes_a_password_hashed_with_old_parameters(gateway_runtime, gateway_app, gateway_login):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("demo")
    with gateway_runtime.session_factory.begin() as session:
        session.scalar(select(User).where(User.username == "admin")).password_hash = weak

    with gateway_app.test_client() as client:
        assert gateway_login(client, "admin").status_code == 200

    stored = _users(gateway_runtime)["admin"].password_hash
    assert stored != weak and not PasswordHasher().check_needs_rehash(stored)
    assert _users(gateway_runtime)["admin"].last_login_at is not None
