"""``ambito``: set up and run the platform.

    ambito migrate [SERVICE...]   bring each service's database to the latest migration
    ambito seed                   load reference data (and demo data in demo mode)
    ambito serve                  the embedded web process (gunicorn, every app mounted)
    ambito worker                 the embedded worker (every queue, plus beat)
    ambito run                    all of the above, then wait; what ``make run`` calls
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import requests
from ambito_common.db import session_scope
from ambito_common.settings import platform_settings
from ambito_common.tasks import SERVICES

from . import runtimes


def migrate(services: list[str]) -> None:
    for name in services or runtimes.ALL:
        runtimes.build(name).migrate()
        print(f"migrated: {name}")


def seed() -> None:
    import gateway.services
    import intake.reference_data
    import vouchers.reference_data

    platform = platform_settings()
    with session_scope(runtimes.build("intake").session_factory) as session:
        intake.reference_data.load_reference_data(session, platform.data_dir)
        if platform.demo:
            intake.reference_data.load_demo_data(session, platform.data_dir, dt.date.today())
    if platform.demo:
        with session_scope(runtimes.build("vouchers").session_factory) as session:
            vouchers.reference_data.load_demo_data(session, platform.data_dir, dt.date.today())
        with session_scope(runtimes.build("gateway").session_factory) as session:
            gateway.services.seed_demo_accounts(session, platform.demo_password, platform=platform)
    print("reference data loaded" + (" (with demo data)" if platform.demo else ""))


def serve_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "1",
            "--threads", "8", "--timeout", "120", "ambito.wsgi:app"]


def worker_command() -> list[str]:
    schedule = platform_settings().var_dir / "run" / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "celery", "-A", "ambito.worker", "worker", "--beat",
            "--schedule", str(schedule), "-Q", ",".join(SERVICES), "--concurrency", "2",
            "--loglevel", "INFO"]


def wait_healthy(url: str, timeout: float, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def run(host: str, port: int) -> int:
    platform = platform_settings()
    migrate([])
    seed()
    processes = [subprocess.Popen(worker_command()), subprocess.Popen(serve_command(host, port))]

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    url = f"http://{host}:{port}"
    try:
        if not wait_healthy(url, 120, lambda: all(p.poll() is None for p in processes)):
            print("The platform did not become healthy; see the log above.", file=sys.stderr)
            stop()
            return 1
        print(f"\n  Piattaforma Ambito pronta: {url}\n")
        if platform.demo:
            print(f"  Accessi dimostrativi (password: {platform.demo_password}):")
            from gateway.services import DEMO_ACCOUNTS

            for username, display_name, roles, _comune in DEMO_ACCOUNTS:
                print(f"    {username:<12} {display_name} ({', '.join(roles)})")
        print(f"\n  Posta in uscita (.eml): {platform.var_dir / 'mail'}\n  Ctrl-C per fermare.\n",
              flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for process in processes:
            process.wait(timeout=30)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ambito", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    migrate_parser = commands.add_parser("migrate")
    migrate_parser.add_argument("services", nargs="*", help=" ".join(runtimes.ALL))
    commands.add_parser("seed")
    for name in ("serve", "run"):
        sub = commands.add_parser(name)
        sub.add_argument("--host", default=os.environ.get("AMBITO_HOST", "127.0.0.1"))
        sub.add_argument("--port", type=int, default=int(os.environ.get("AMBITO_PORT", "8000")))
    commands.add_parser("worker")
    args = parser.parse_args(argv)

    if args.command == "migrate":
        migrate(args.services)
    elif args.command == "seed":
        seed()
    elif args.command == "serve":
        os.execv(sys.executable, serve_command(args.host, args.port))
    elif args.command == "worker":
        os.execv(sys.executable, worker_command())
    elif args.command == "run":
        return run(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
