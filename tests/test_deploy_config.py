"""The distributed-mode deployment: docker-compose.yml, the nginx edge and gunicorn settings.

docker-compose.yml is checked against the Compose specification and for the properties the
platform relies on. The nginx template is rendered with deploy/nginx/render.py and run by the
real nginx in front of four stand-in apps (tiny HTTP servers that echo what they received),
so routing, headers, limits and static files are observed from outside, as a browser would.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml
from ambito_common.testing import REPO_ROOT, SHARED_DIR, free_port, require

from ambito.dispatcher import SERVICE_PREFIXES
from tests.harness import load_nginx_render, nginx_scratch_dir

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = SHARED_DIR / "standards" / "compose-spec" / "compose-spec.json"
NGINX_DIR = REPO_ROOT / "deploy" / "nginx"

PYTHON_SERVICES = {"migrate", "gateway", "intake", "vouchers", "documents",
                   "worker-intake", "worker-documents", "worker-vouchers", "beat"}
WEB_SERVICES = {"gateway": "/healthz", "intake": "/api/intake/health",
                "vouchers": "/api/vouchers/health", "documents": "/api/documents/health"}
QUEUES = ("intake", "documents", "vouchers")
UPSTREAMS = ("gateway", "intake", "vouchers", "documents")
UPLOAD_LIMIT = 35 * 1024 * 1024


render = load_nginx_render()


# --- docker-compose.yml -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def test_compose_file_follows_the_compose_specification(compose: dict) -> None:
    require(COMPOSE_SCHEMA.exists(), f"Compose specification schema not found at {COMPOSE_SCHEMA}")
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


def test_python_processes_share_one_image_and_the_fixed_entry_points(compose: dict) -> None:
    services = compose["services"]
    assert set(services) >= PYTHON_SERVICES
    assert len({services[name]["image"] for name in PYTHON_SERVICES}) == 1
    assert {services[name]["build"]["dockerfile"] for name in PYTHON_SERVICES} == {"deploy/Dockerfile"}

    for name in WEB_SERVICES:
        assert services[name]["command"] == ["gunicorn", "-c", "deploy/gunicorn.conf.py", f"{name}.wsgi:app"]
    for queue in QUEUES:
        command = services[f"worker-{queue}"]["command"]
        assert command[:6] == ["celery", "-A", f"{queue}.worker", "worker", "-Q", queue]
        assert "-B" not in command and "--beat" not in command
    assert services["beat"]["command"][:4] == ["celery", "-A", "ambito.beat", "beat"]
    assert services["migrate"]["command"] == ["sh", "-c", "ambito migrate && ambito seed"]
    assert services["migrate"]["restart"] == "no"


def test_only_nginx_publishes_a_port_and_it_is_8000(compose: dict) -> None:
    published = {name: service["ports"]
                 for name, service in compose["services"].items() if "ports" in service}
    assert published == {"nginx": ["8000:80"]}


def test_every_dependency_waits_for_health_or_completion(compose: dict) -> None:
    services = compose["services"]
    expected = {"postgres": "service_healthy", "redis": "service_healthy",
                "migrate": "service_completed_successfully",
                **dict.fromkeys(WEB_SERVICES, "service_healthy")}
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert spec["condition"] == expected[dependency], (name, dependency)
            if spec["condition"] == "service_healthy":
                assert "test" in services[dependency]["healthcheck"], dependency
    for name in PYTHON_SERVICES - {"migrate"}:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert set(services["nginx"]["depends_on"]) == set(WEB_SERVICES)


def test_web_services_report_health_on_their_own_endpoint(compose: dict) -> None:
    for name, path in WEB_SERVICES.items():
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        assert f"'http://127.0.0.1:8000{path}'" in test[3]


def test_secrets_are_files_outside_git_never_inline_values(compose: dict) -> None:
    secrets = compose["secrets"]
    assert {"identity_private_key", "identity_public_key", "seal_p12", "seal_p12_password",
            "seal_ca"} <= set(secrets)
    for name, spec in secrets.items():
        assert set(spec) == {"file"}, name
        assert spec["file"].startswith("deploy/secrets/"), name
    assert (REPO_ROOT / "deploy" / "secrets" / "README.md").exists()
    assert "*" in (REPO_ROOT / "deploy" / "secrets" / ".gitignore").read_text().splitlines()

    # Passwords and keys in the environment are interpolated from .env, never written here.
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            assert "PRIVATE KEY" not in str(value), (name, key)
            if key.endswith("_FILE"):  # a path to a mounted secret, not the secret
                assert str(value).startswith("/run/secrets/"), (name, key)
            elif re.search(r"PASSWORD|SECRET_KEY", key):
                assert str(value).startswith("${"), (name, key)
            if key.endswith("DATABASE_URL"):
                assert ":${POSTGRES_PASSWORD:?" in value, (name, key)
    private_key_holders = {name for name, service in compose["services"].items()
                           if "identity_private_key" in str(service.get("secrets"))}
    assert private_key_holders == {"gateway", "migrate"}


def test_each_service_has_its_own_database(compose: dict) -> None:
    services = compose["services"]
    created = set(re.findall(r"CREATE DATABASE (\w+);", (REPO_ROOT / "deploy/postgres/init.sql").read_text()))
    assert created == {f"ambito_{name}" for name in WEB_SERVICES}
    for name in WEB_SERVICES:
        variable = f"{name.upper()}_DATABASE_URL"
        url = services[name]["environment"][variable]
        assert url.startswith("postgresql+psycopg://") and url.endswith(f"@postgres:5432/ambito_{name}")
        assert services["migrate"]["environment"][variable] == url
        # A service sees its own database and no other.
        others = {key for key in services[name]["environment"] if key.endswith("_DATABASE_URL")}
        assert others == {variable}
    for queue in QUEUES:
        variable = f"{queue.upper()}_DATABASE_URL"
        worker_env = services[f"worker-{queue}"]["environment"]
        assert worker_env[variable] == services[queue]["environment"][variable]


def test_documents_web_and_worker_share_storage_and_seal(compose: dict) -> None:
    services = compose["services"]
    for name in ("documents", "worker-documents"):
        assert "documents-storage:/var/lib/ambito/documents" in services[name]["volumes"]
        assert services[name]["environment"]["DOCUMENTS_STORAGE_DIR"] == "/var/lib/ambito/documents"
        targets = {secret["target"] for secret in services[name]["secrets"] if isinstance(secret, dict)}
        assert targets == {"/run/secrets/pki/seal.p12", "/run/secrets/pki/seal.p12.password",
                           "/run/secrets/pki/ca.pem"}
    assert {"pgdata", "documents-storage"} <= set(compose["volumes"])


def test_files_uploaded_to_a_web_app_are_seen_by_its_worker(compose: dict) -> None:
    """The worker puts uploads (intake) and invoices (vouchers) into packages: same volume, same path."""
    services = compose["services"]
    for name, volume, variable in (("intake", "intake-uploads", "INTAKE_STORAGE_DIR"),
                                   ("vouchers", "vouchers-invoices", "VOUCHERS_INVOICES_DIR")):
        path = services[name]["environment"][variable]
        for service in (name, f"worker-{name}"):
            assert f"{volume}:{path}" in services[service]["volumes"]
            assert services[service]["environment"][variable] == path
        assert volume in compose["volumes"]


def test_nginx_image_gives_every_template_placeholder_a_value() -> None:
    dockerfile = (NGINX_DIR / "Dockerfile").read_text()
    defined = set(re.findall(r"^\s*(?:ENV\s+)?([A-Z_]+)=", dockerfile, flags=re.MULTILINE))
    wanted = render.placeholders((NGINX_DIR / "ambito.conf.template").read_text())
    assert wanted == {"GATEWAY_UPSTREAM", "INTAKE_UPSTREAM", "VOUCHERS_UPSTREAM", "DOCUMENTS_UPSTREAM",
                      "STATIC_ROOT", "LISTEN_PORT"}
    assert wanted <= defined
    envsubst_filter = re.search(r"NGINX_ENVSUBST_FILTER='([^']+)'", dockerfile).group(1)
    assert all(re.match(envsubst_filter, name) for name in wanted)
    assert not re.match(envsubst_filter, "HOSTNAME")


def test_nginx_routes_each_prefix_to_the_service_the_embedded_dispatcher_does() -> None:
    """Distributed and embedded mode must agree on which service owns a path."""
    template = re.sub(r"#[^\n]*", "", (NGINX_DIR / "ambito.conf.template").read_text())
    routed: dict[str, set[str]] = {}
    for path, body in re.findall(r"location\s+(?:=\s+)?(/\S*)\s*\{([^{}]*)\}", template):
        upstream = re.search(r"proxy_pass\s+http://ambito_(\w+);", body)
        if upstream:
            routed.setdefault(upstream.group(1), set()).add(path)
    assert routed.pop("gateway") == {"/", "/auth/login", "/accesso"}
    assert routed == {service: set(prefixes) for service, prefixes in SERVICE_PREFIXES.items()}


# --- nginx --------------------------------------------------------------------------------


def nginx_binary() -> str:
    """The nginx executable; skip without one, fail under REQUIRE_SERVICES=1."""
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None)
    require(found is not None, "nginx is not installed (apt-get install nginx-light)")
    return found


def nginx_values(upstreams: dict[str, int], static_root: Path, port: int) -> dict[str, str]:
    return {**{f"{name.upper()}_UPSTREAM": f"127.0.0.1:{upstreams[name]}" for name in UPSTREAMS},
            "STATIC_ROOT": str(static_root), "LISTEN_PORT": f"127.0.0.1:{port}"}


@contextmanager
def running_nginx(prefix: Path, values: dict[str, str]) -> Iterator[str]:
    """Render the template under ``prefix``, run nginx in the foreground, yield its base URL."""
    conf = render.render(prefix / "nginx.conf", values)
    log_path = prefix / "nginx.log"
    host, port = values["LISTEN_PORT"].rsplit(":", 1)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [nginx_binary(), "-e", "stderr", "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                socket.create_connection((host, int(port)), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nginx did not listen on {host}:{port}:\n{log_path.read_text()}")
                time.sleep(0.05)
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class EchoHandler(BaseHTTPRequestHandler):
    """Stands in for one app: answers with its name and what it received."""

    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        received = 0
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            received += len(chunk)
            remaining -= len(chunk)
        body = json.dumps({
            "upstream": self.server.upstream_name,
            "method": self.command,
            "path": self.path,
            "body_bytes": received,
            "headers": {name.lower(): value for name, value in self.headers.items()},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Frame-Options", "SAMEORIGIN")  # nginx must replace, not duplicate
        if "own-csp" in self.path:
            self.send_header("Content-Security-Policy", "default-src 'none'")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def echo_upstreams() -> Iterator[dict[str, int]]:
    servers = []
    for name in UPSTREAMS:
        server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
        server.daemon_threads = True
        server.upstream_name = name
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        yield {name: server.server_address[1] for name, server in zip(UPSTREAMS, servers, strict=True)}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def edge() -> Iterator[str]:
    """nginx with the rendered template in front of the four stand-in apps; its base URL."""
    nginx_binary()
    with nginx_scratch_dir() as scratch, echo_upstreams() as upstreams:
        static = scratch / "static"
        (static / "css").mkdir(parents=True)
        (static / "css" / "app.css").write_text("body { color: #06c; }\n" * 200)
        static.chmod(0o755)
        (static / "css").chmod(0o755)
        with running_nginx(scratch / "prefix", nginx_values(upstreams, static, free_port())) as url:
            yield url


def assert_security_headers(response: requests.Response) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "img-src 'self' data:" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in headers  # HTTPS only
    assert headers["Server"] == "nginx"  # no version


def test_render_refuses_to_leave_a_placeholder(tmp_path: Path) -> None:
    with pytest.raises(render.RenderError, match="LISTEN_PORT, STATIC_ROOT"):
        render.render(tmp_path / "nginx.conf", {f"{name.upper()}_UPSTREAM": "x:1" for name in UPSTREAMS})
    assert not (tmp_path / "nginx.conf").exists()
    with pytest.raises(render.RenderError, match="unreplaced"):
        render.render_text("a ${B} c", {"B": "${D"})
    assert render.render_text("proxy_pass $host ${A};", {"A": "x"}) == "proxy_pass $host x;"


def test_rendered_configuration_passes_nginx_t() -> None:
    nginx = nginx_binary()
    with nginx_scratch_dir() as scratch:
        values = nginx_values(dict.fromkeys(UPSTREAMS, 8000), scratch / "static", 8080)
        conf = render.render(scratch / "prefix" / "nginx.conf", values)
        result = subprocess.run([nginx, "-t", "-e", "stderr", "-p", f"{scratch}/prefix/", "-c", str(conf)],
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr



def test_the_image_envsubst_renders_the_same_file_as_render_py() -> None:
    """What the nginx image's entrypoint does: envsubst limited to the Dockerfile's filter."""
    envsubst = shutil.which("envsubst")
    require(envsubst is not None, "envsubst is not installed (apt-get install gettext-base)")
    dockerfile = (NGINX_DIR / "Dockerfile").read_text()
    envsubst_filter = re.search(r"NGINX_ENVSUBST_FILTER='([^']+)'", dockerfile).group(1)
    values = nginx_values(dict.fromkeys(UPSTREAMS, 8000), Path("/srv/static"), 80)
    environment = {"PATH": os.environ.get("PATH", ""), "HOSTNAME": "edge", "HOME": "/root", **values}
    shell_format = " ".join(f"${{{name}}}" for name in environment if re.match(envsubst_filter, name))
    template = (NGINX_DIR / "ambito.conf.template").read_text()
    result = subprocess.run([envsubst, shell_format], input=template, capture_output=True, text=True,
                            env=environment, check=True, timeout=30)
    assert result.stdout == render.render_text(template, values)

@pytest.mark.slow
@pytest.mark.parametrize(("path", "upstream"), [
    ("/api/intake/calls?active=1", "intake"),
    ("/intake/avvisi/2026-coprogrammazione/domanda", "intake"),
    ("/intake/caf%C3%A8/%20x", "intake"),
    ("/api/vouchers/funds", "vouchers"),
    ("/vouchers/buoni", "vouchers"),
    ("/api/documents/packages/7", "documents"),
    ("/protocollo/in-arrivo?page=2", "documents"),
    ("/", "gateway"),
    ("/accesso", "gateway"),
    ("/auth/refresh?next=/intake/", "gateway"),
    ("/healthz", "gateway"),
    ("/api/openapi.json", "gateway"),
    ("/api/intakes", "gateway"),
])
def test_each_prefix_reaches_its_app_with_the_path_unchanged(edge: str, path: str, upstream: str) -> None:
    response = requests.get(edge + path, timeout=10)
    assert response.status_code == 200
    echoed = response.json()
    assert (echoed["upstream"], echoed["path"]) == (upstream, path)
    assert_security_headers(response)


@pytest.mark.slow
def test_a_prefix_without_its_slash_redirects_relatively(edge: str) -> None:
    response = requests.get(edge + "/protocollo", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == "/protocollo/"  # valid behind any port or TLS


@pytest.mark.slow
def test_request_id_and_forwarding_headers_reach_the_app(edge: str) -> None:
    given = requests.get(edge + "/intake/x", headers={"X-Request-ID": "req-123.abc"}, timeout=10)
    assert given.json()["headers"]["x-request-id"] == "req-123.abc"
    assert given.headers["X-Request-ID"] == "req-123.abc"

    minted = requests.get(edge + "/vouchers/x", timeout=10)
    request_id = minted.json()["headers"]["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert minted.headers["X-Request-ID"] == request_id

    # An id that could forge a log line is replaced, not forwarded.
    forged = requests.get(edge + "/", headers={"X-Request-ID": 'x" status=200 user=admin'}, timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", forged.json()["headers"]["x-request-id"])

    headers = minted.json()["headers"]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["host"] == edge.removeprefix("http://")
    assert headers["x-forwarded-host"] == edge.removeprefix("http://")


@pytest.mark.slow
def test_nginx_security_headers_replace_the_apps_but_a_page_may_set_its_own_policy(edge: str) -> None:
    response = requests.get(edge + "/intake/x", timeout=10)
    assert response.raw.headers.getlist("X-Frame-Options") == ["DENY"]
    own = requests.get(edge + "/intake/own-csp", timeout=10)
    assert own.raw.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]


@pytest.mark.slow
def test_static_files_are_served_by_nginx_with_a_long_cache(edge: str) -> None:
    response = requests.get(edge + "/static/css/app.css", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200
    assert response.text == "body { color: #06c; }\n" * 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert response.headers["Content-Encoding"] == "gzip"
    max_age = int(re.search(r"max-age=(\d+)", response.headers["Cache-Control"]).group(1))
    assert max_age >= 7 * 24 * 3600
    assert_security_headers(response)
    assert requests.get(edge + "/static/css/missing.css", timeout=10).status_code == 404


@pytest.mark.slow
def test_an_upload_within_the_limit_reaches_the_app(edge: str) -> None:
    body = os.urandom(31 * 1024 * 1024)
    response = requests.post(edge + "/api/intake/uploads", data=body,
                             headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert response.status_code == 200
    assert response.json()["body_bytes"] == len(body)


@pytest.mark.slow
def test_a_body_over_the_limit_is_refused_with_an_italian_problem(edge: str) -> None:
    host, port = edge.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/api/intake/uploads")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(UPLOAD_LIMIT + 1))
    connection.endheaders()  # nginx answers on the declared length, before any body
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/problem+json; charset=utf-8"
    problem = json.loads(body)
    assert problem["status"] == 413
    assert problem["title"] == "Richiesta troppo grande"
    assert "30 MB" in problem["detail"]
    assert response.getheader("X-Content-Type-Options") == "nosniff"

    # A body actually sent (chunked, no declared length) is cut off the same way.
    chunks = (b"\0" * (1024 * 1024) for _ in range(40))
    refused = requests.post(edge + "/intake/uploads", data=chunks, timeout=60)
    assert refused.status_code == 413


@pytest.mark.slow
def test_login_attempts_are_rate_limited(edge: str) -> None:
    with requests.Session() as session:
        statuses = [session.post(edge + "/auth/login", data={"username": "x", "password": "y"},
                                 timeout=10).status_code for _ in range(14)]
        assert statuses[:11] == [200] * 11  # one, plus a burst of ten
        assert statuses[11:] == [429] * 3
        limited = session.post(edge + "/accesso", data={"username": "x"}, timeout=10)
        assert limited.status_code == 429  # the login page shares the same allowance
        assert limited.headers["Content-Type"] == "application/problem+json; charset=utf-8"
        assert limited.json()["title"] == "Troppi tentativi"
        assert_security_headers(limited)
        # Looking at the login page is not an attempt.
        assert session.get(edge + "/accesso", timeout=10).status_code == 200


@pytest.mark.slow
def test_an_unreachable_app_gets_an_italian_problem() -> None:
    nginx_binary()
    closed = {name: free_port() for name in UPSTREAMS}
    with nginx_scratch_dir() as scratch, running_nginx(
            scratch / "prefix", nginx_values(closed, scratch / "static", free_port())) as url:
        response = requests.get(url + "/api/vouchers/funds", timeout=10)
    assert response.status_code == 503
    assert response.json()["title"] == "Servizio non disponibile"
    assert_security_headers(response)


# --- gunicorn ----------------------------------------------------------------------------

PROBE_APP = '''
import json

def app(environ, start_response):
    body = json.dumps({"scheme": environ["wsgi.url_scheme"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.mark.slow
def test_gunicorn_settings_bind_port_trust_the_proxy_and_log_the_request_id(tmp_path: Path) -> None:
    (tmp_path / "probe_app.py").write_text(PROBE_APP)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1", "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "deploy" / "gunicorn.conf.py"),
             "--chdir", str(tmp_path), "probe_app:app"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/x", timeout=5, headers={
                    "X-Forwarded-Proto": "https", "X-Request-ID": "rid-gunicorn-1"})
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
        assert response.json() == {"scheme": "https"}  # nginx's X-Forwarded-Proto believed
    finally:
        process.terminate()
        returncode = process.wait(timeout=40)
    log_text = log_path.read_text()
    assert returncode == 0, log_text
    assert re.search(r'"GET /x HTTP/1.1" 200 \d+ \d+ms request_id=rid-gunicorn-1', log_text), log_text
    assert "Using worker: gthread" in log_text

