"""Intake settings: the key signing e-mailed manage links is one key for every process."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ambito_common.settings import SettingsError
from intake.settings import Settings


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"AMBITO_VAR_DIR": str(tmp_path / "var"), "AMBITO_DATA_DIR": str(tmp_path), **extra}


def test_embedded_mode_creates_the_link_key_once_and_keeps_it(tmp_path):
    first = Settings.from_env(_environ(tmp_path))
    key = first.link_key_file.read_bytes()
    assert first.link_key_file == tmp_path / "var" / "keys" / "intake-links.key"
    assert len(key) >= 32
    assert first.link_key_file.stat().st_mode & 0o077 == 0
    Settings.from_env(_environ(tmp_path))
    assert first.link_key_file.read_bytes() == key
    assert list(first.link_key_file.parent.iterdir()) == [first.link_key_file]  # no temporary file left


@pytest.mark.parametrize("attempt", range(20))
def test_threads_starting_together_end_with_the_same_key(tmp_path, attempt):
    """Web and worker starting together: each reads the key it will sign or verify with."""
    barrier = threading.Barrier(8)
    keys: list[bytes] = []

    def start() -> None:
        barrier.wait()
        keys.append(Settings.from_env(_environ(tmp_path)).link_key_file.read_bytes())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert (tmp_path / "var" / "keys" / "intake-links.key").read_bytes() == keys[0]


def test_processes_starting_together_end_with_the_same_key(tmp_path):
    script = ("import sys; from intake.settings import Settings; "
              "env = {'AMBITO_VAR_DIR': sys.argv[1], 'AMBITO_DATA_DIR': sys.argv[1]}; "
              "sys.stdout.write(Settings.from_env(env).link_key_file.read_bytes().hex())")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "var")],
                                  stdout=subprocess.PIPE, text=True) for _ in range(6)]
    keys = {process.communicate(timeout=60)[0] for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert keys == {(tmp_path / "var" / "keys" / "intake-links.key").read_bytes().hex()}


def test_distributed_mode_stops_without_the_link_key_secret(tmp_path):
    environ = _environ(tmp_path, AMBITO_MODE="distributed", AMBITO_BROKER_URL="redis://127.0.0.1:6379/0",
                       AMBITO_SMTP_URL="smtp://mail:25", INTAKE_DATABASE_URL="postgresql+psycopg://h/db",
                       INTAKE_LINK_KEY_FILE=str(tmp_path / "secrets" / "intake-link.key"))
    with pytest.raises(SettingsError, match="INTAKE_LINK_KEY_FILE"):
        Settings.from_env(environ)
    assert not (tmp_path / "secrets").exists()  # never generated: web and worker would disagree
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "intake-link.key").write_text("a-mounted-secret\n", encoding="ascii")
    assert Settings.from_env(environ).link_key_file.read_bytes() == b"a-mounted-secret\n"
