"""Start the real platform as processes and walk it like a user would.

Used by the end-to-end, distributed-topology, fault and browser suites: the
embedded platform (``ambito serve`` + ``ambito worker`` on SQLite and the
filesystem broker) and the distributed one (gunicorn per service behind the
project's nginx configuration, a Celery worker per queue, PostgreSQL, Redis).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from aiosmtpd.controller import Controller
from ambito_common.testing import REPO_ROOT, free_port

BIN = Path(sys.executable).parent
T = TypeVar("T")

VALID_APPLICATION: dict[str, Any] = {
    "organisation": {
        "name": "Cooperativa Sociale Il Sentiero",
        "category": "ets",
        "legal_form": "cooperativa_sociale",
        "tax_code": "01234560165",
        "runts_number": "123456",
        "address": {"street": "Via Roma 1", "postal_code": "24023", "municipality": "Clusone",
                    "province": "BG"},
        "pec": "ilsentiero@pec.example.it",
        "email": "info@ilsentiero.example.it",
        "phone": "+39 0346 123456",
    },
    "legal_representative": {"first_name": "Mario", "last_name": "Rossi",
                             "tax_code": "RSSMRA80A01H501U"},
    "contact_person": {"first_name": "Giovanna", "last_name": "Bianchi",
                       "email": "g.bianchi@ilsentiero.example.it", "phone": "333 1234567"},
    "areas": [],  # filled with the call's first area code by `application_for`
    "commitments_accepted": True,
    "publication_consent": True,
    "ip_release": True,
    "privacy_acknowledged": True,
}


def wait_until(probe: Callable[[], T | None], *, timeout: float = 60, interval: float = 0.3,
               what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class MailSink:
    """A real SMTP server (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> MailSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@dataclass
class Processes:
    """Child processes with their logs in files, stopped (or killed) at the end."""

    log_dir: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The structured (JSON) log events a process wrote."""
        events = []
        for line in self.log(name).splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children (a prefork worker's pool) at once."""
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.running.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            if process.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
                print(f"--- {name} exited {process.returncode}:\n{self.log(name)[-3000:]}")
        self.running.clear()

    def describe(self) -> str:
        return "\n".join(f"--- {name}:\n{self.log(name)[-4000:]}" for name in self.running)


def run_cli(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run([str(BIN / "ambito"), *args], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"ambito {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@dataclass
class Platform:
    """A running platform seen from outside: its URL, its processes, its environment."""

    url: str
    env: dict[str, str]
    processes: Processes
    var_dir: Path
    mail: MailSink
    ca_file: Path | None = None  # the seal's test CA; var/pki/ca.pem when embedded

    @property
    def seal_ca(self) -> Path:
        return self.ca_file or self.var_dir / "pki" / "ca.pem"

    def wait_healthy(self, timeout: float = 90) -> None:
        def healthy() -> bool:
            for name, process in self.processes.running.items():
                assert process.poll() is None, f"{name} died:\n{self.processes.log(name)[-4000:]}"
            try:
                return requests.get(self.url + "/healthz", timeout=3).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(healthy, timeout=timeout, interval=0.5, what="/healthz to answer 200")
        except AssertionError:
            print(self.processes.describe())
            raise

    def token(self, username: str) -> str:
        response = requests.post(self.url + "/auth/login", timeout=10, json={
            "username": username, "password": self.env.get("AMBITO_DEMO_PASSWORD", "demo")})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def open_call(self) -> dict[str, Any]:
        calls = requests.get(self.url + "/api/intake/calls", timeout=10).json()
        return next(call for call in calls if call["status"] == "open")

    def submit(self, payload: dict[str, Any] | None = None, *,
               request_id: str | None = None) -> dict[str, Any]:
        call = self.open_call()
        payload = application_for(call, payload)
        headers = {"X-Request-ID": request_id} if request_id else {}
        response = requests.post(f"{self.url}/api/intake/calls/{call['slug']}/applications",
                                 json=payload, headers=headers, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    def tracking(self, code: str) -> dict[str, Any]:
        response = requests.get(f"{self.url}/api/intake/applications/{code}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, code: str, status: str, timeout: float = 90) -> dict[str, Any]:
        try:
            return wait_until(lambda: (t := self.tracking(code))["status"] == status and t,
                              timeout=timeout, what=f"application {code} to be {status}")
        except AssertionError:
            print(self.processes.describe())
            raise


def application_for(call: dict[str, Any], payload: dict[str, Any] | None = None) -> dict[str, Any]:
    import copy

    payload = copy.deepcopy(payload or VALID_APPLICATION)
    payload["areas"] = payload["areas"] or [call["areas"][0]["code"]]
    return payload


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AMBITO_", "GATEWAY_", "INTAKE_", "VOUCHERS_", "DOCUMENTS_"))}
    env.update({"AMBITO_ROOT": str(REPO_ROOT), "AMBITO_VAR_DIR": str(tmp / "var"),
                "AMBITO_DATA_DIR": str(REPO_ROOT / "data" / "ambiti" / "vsssc"),
                "AMBITO_DEMO": "1", "AMBITO_LOG_JSON": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@contextmanager
def embedded_platform(tmp: Path) -> Iterator[Platform]:
    """``ambito serve`` and ``ambito worker``, exactly as ``make run`` starts them."""
    port = free_port()
    with ExitStack() as stack:
        mail = stack.enter_context(MailSink())
        env = base_env(tmp, AMBITO_MODE="embedded", AMBITO_SMTP_URL=mail.url,
                       AMBITO_PUBLIC_URL=f"http://127.0.0.1:{port}")
        (tmp / "logs").mkdir(parents=True, exist_ok=True)
        processes = Processes(tmp / "logs")
        stack.callback(processes.stop_all)
        run_cli(["migrate"], env)
        run_cli(["seed"], env)
        processes.start("worker", [str(BIN / "ambito"), "worker"], env)
        processes.start("web", [str(BIN / "ambito"), "serve", "--port", str(port)], env)
        platform = Platform(f"http://127.0.0.1:{port}", env, processes, tmp / "var", mail)
        platform.wait_healthy()
        yield platform


def load_nginx_render() -> Any:
    """deploy/nginx/render.py as a module (it is a script of the nginx image, not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_nginx_render",
                                                  REPO_ROOT / "deploy" / "nginx" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def nginx_scratch_dir() -> Iterator[Path]:
    """A directory nginx's unprivileged workers can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ambito-nginx-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def distributed_platform(tmp: Path, *, redis_db: int, visibility_timeout: int = 3600,
                         workers: tuple[str, ...] = ("intake", "vouchers", "documents"),
                         ) -> Iterator[Platform]:
    """The docker-compose topology without Docker: PostgreSQL, Redis, gunicorn, nginx."""
    import redis
    from ambito_common.identity import ensure_keypair
    from ambito_common.testing import fresh_postgres_database, require_redis
    from ambito_common.web import COMMON_STATIC
    from documents.builders import ensure_dev_pki

    require_redis()
    if shutil.which("nginx") is None:
        raise AssertionError("nginx is not installed (apt-get install nginx-light)")
    broker = f"redis://127.0.0.1:6379/{redis_db}"
    redis.Redis.from_url(broker).flushdb()
    with ExitStack() as stack:
        urls = {name: stack.enter_context(fresh_postgres_database(f"ambito_{name}"))
                for name in ("gateway", "intake", "vouchers", "documents")}
        mail = stack.enter_context(MailSink())
        secrets = tmp / "secrets"
        ensure_keypair(secrets / "identity.pem", secrets / "identity.pub.pem")
        pki = ensure_dev_pki(secrets / "pki", "Comune di Clusone")
        (secrets / "intake-link.key").write_text("test-intake-link-key-0123456789abcdef", encoding="ascii")
        ports = {name: free_port() for name in ("gateway", "intake", "vouchers", "documents", "nginx")}
        public_url = f"http://127.0.0.1:{ports['nginx']}"
        env = base_env(
            tmp, AMBITO_MODE="distributed", AMBITO_BROKER_URL=broker, AMBITO_SMTP_URL=mail.url,
            AMBITO_PUBLIC_URL=public_url, AMBITO_BROKER_VISIBILITY_TIMEOUT=str(visibility_timeout),
            AMBITO_IDENTITY_PUBLIC_KEY_FILE=str(secrets / "identity.pub.pem"),
            GATEWAY_IDENTITY_PRIVATE_KEY_FILE=str(secrets / "identity.pem"),
            GATEWAY_SECRET_KEY="test-secret-key-0123456789abcdef",
            INTAKE_LINK_KEY_FILE=str(secrets / "intake-link.key"),
            GATEWAY_SERVICE_URLS=",".join(f"{name}=http://127.0.0.1:{ports[name]}"
                                          for name in ("intake", "vouchers", "documents")),
            DOCUMENTS_STORAGE_DIR=str(tmp / "documents"),
            DOCUMENTS_SEAL_P12_FILE=str(pki.seal_p12), DOCUMENTS_SEAL_P12_PASSWORD=pki.p12_password,
            DOCUMENTS_SEAL_TRUST_FILE=str(pki.ca_cert),
            **{f"{name.upper()}_DATABASE_URL": url for name, url in urls.items()},
        )
        (tmp / "logs").mkdir(parents=True, exist_ok=True)
        processes = Processes(tmp / "logs")
        stack.callback(processes.stop_all)
        run_cli(["migrate"], env)
        run_cli(["seed"], env)
        for name in ("gateway", "intake", "vouchers", "documents"):
            processes.start(name, [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                                   f"{name}.wsgi:app"],
                            {**env, "PORT": str(ports[name]), "WEB_CONCURRENCY": "1",
                             "FORWARDED_ALLOW_IPS": "127.0.0.1"})
        for queue in workers:
            processes.start(f"worker-{queue}", worker_command(queue), env)
        processes.start("beat", [str(BIN / "celery"), "-A", "ambito.beat", "beat", "-s",
                                 str(tmp / "celerybeat-schedule")], env)
        prefix = stack.enter_context(nginx_scratch_dir())
        load_nginx_render().render(prefix / "nginx.conf", {
            **{f"{name.upper()}_UPSTREAM": f"127.0.0.1:{ports[name]}"
               for name in ("gateway", "intake", "vouchers", "documents")},
            "STATIC_ROOT": str(COMMON_STATIC), "LISTEN_PORT": f"127.0.0.1:{ports['nginx']}"})
        processes.start("nginx", ["nginx", "-e", "stderr", "-p", f"{prefix}/", "-c",
                                  str(prefix / "nginx.conf"), "-g", "daemon off;"], env)
        platform = Platform(public_url, env, processes, tmp / "var", mail,
                            ca_file=pki.ca_cert)
        platform.wait_healthy()
        yield platform


def worker_command(queue: str) -> list[str]:
    return [str(BIN / "celery"), "-A", f"{queue}.worker", "worker", "-Q", queue,
            "--concurrency", "1", "--hostname", f"{queue}@%h", "--loglevel", "INFO"]
