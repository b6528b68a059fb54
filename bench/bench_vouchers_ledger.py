"""Ledger reservations per second: service function and HTTP against a bare SQL INSERT.

Three ways to write one reservation, each its own committed transaction:

* baseline: one single-statement ``INSERT`` into a bare table (no lock, no check,
  no ledger) on the same database;
* service: ``services.reserve`` in ``run_transaction`` (budget row lock, check,
  reservation row, a balanced journal with two entries, budget totals);
* http: ``POST /api/vouchers/reservations`` over a real socket to the vouchers app served by
  a threaded WSGI server in this process (HTTP parsing, token verification, validation,
  Idempotency-Key lookup and storage, then the service), one kept-alive connection per thread.

Each runs with several threads (own session each) under low contention (every
thread on a different comune) and with one hot budget (every thread on the same
comune), interleaved in one process on the same database in the same minute, so
the ratios survive a noisy 2-core host where absolute figures do not.

    .venv/bin/python bench/bench_vouchers_ledger.py [--backend sqlite|postgres|both] [--ops N] [--threads T]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
from ambito_common.db import session_scope
from ambito_common.identity import Identity, TokenIssuer, ensure_keypair
from ambito_common.testing import REPO_ROOT, fresh_postgres_database
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table
from vouchers import services
from vouchers.app import create_app
from vouchers.reference_data import load_demo_data
from vouchers.runtime import Runtime
from vouchers.settings import Settings
from werkzeug.serving import make_server

DATA_DIR = REPO_ROOT / "data" / "ambiti" / "vsssc"
FUND = "fna-b2"
COMUNI = [c["code"] for c in json.loads((DATA_DIR / "ambito.json").read_text(encoding="utf-8"))["comuni"]]
HOT = "clusone"
# The bare INSERT the ledger is compared with; one definition, an auto-numbered key on either backend.
BASELINE = Table("bench_baseline", MetaData(), Column("id", Integer, primary_key=True),
                 Column("comune", String(60)), Column("amount", BigInteger), Column("reference", String(200)))

Op = Callable[[int], None]


def timed(threads: int, ops: int, make_op: Callable[[int], tuple[Op, Callable[[], None]]]) -> float:
    """Operations per second of ``threads`` threads running ``ops`` operations each."""
    workers = [make_op(t) for t in range(threads)]
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def run(op: Op) -> None:
        barrier.wait()
        try:
            for i in range(ops):
                op(i)
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(op,)) for op, _ in workers]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    for _, close in workers:
        close()
    if errors:
        raise errors[0]
    return threads * ops / elapsed


class Bench:
    def __init__(self, runtime: Runtime, issuer: TokenIssuer, period: str) -> None:
        self.runtime, self.period = runtime, period
        self.factory = runtime.session_factory
        self.server = make_server("127.0.0.1", 0, create_app(runtime=runtime), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/vouchers/reservations"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        token = issuer.issue(Identity(subject="bench", username="bench", roles=("ambito_admin",)))
        self.headers = {"Authorization": f"Bearer {token}"}
        with session_scope(self.factory) as session:
            BASELINE.create(session.connection(), checkfirst=True)

    def baseline(self, comune_of: Callable[[int], str]) -> Callable[[int], tuple[Op, Callable[[], None]]]:
        def make(t: int) -> tuple[Op, Callable[[], None]]:
            session = self.factory()
            statement = BASELINE.insert()

            def op(i: int) -> None:
                session.execute(statement, {"comune": comune_of(t), "amount": 1,
                                            "reference": f"bench {t}/{i}"})
                session.commit()

            return op, session.close

        return make

    def service(self, comune_of: Callable[[int], str]) -> Callable[[int], tuple[Op, Callable[[], None]]]:
        def make(t: int) -> tuple[Op, Callable[[], None]]:
            session = self.factory()

            def op(i: int) -> None:
                services.run_transaction(session, lambda: services.reserve(
                    session, fund_code=FUND, period_code=self.period, comune=comune_of(t), amount=1,
                    reference=f"bench {t}/{i}", actor="bench"))

            return op, session.close

        return make

    def http(self, comune_of: Callable[[int], str]) -> Callable[[int], tuple[Op, Callable[[], None]]]:
        def make(t: int) -> tuple[Op, Callable[[], None]]:
            client = requests.Session()

            def op(i: int) -> None:
                response = client.post(self.url, timeout=30, headers={
                    **self.headers, "Idempotency-Key": uuid.uuid4().hex}, json={
                    "fund": FUND, "period": self.period, "comune": comune_of(t), "amount": 1,
                    "reference": f"bench {t}/{i}"})
                if response.status_code != 201:
                    raise RuntimeError(response.text)

            return op, client.close

        return make


@contextlib.contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'vouchers-bench.sqlite3'}"
    else:
        with fresh_postgres_database("vouchers_bench") as url:
            yield url


def run_backend(backend: str, ops: int, threads: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
        workdir = Path(tmp)
        ensure_keypair(workdir / "identity.pem", workdir / "identity.pub.pem")
        settings = Settings.from_env({"AMBITO_VAR_DIR": str(workdir), "AMBITO_DATA_DIR": str(DATA_DIR),
                                      "AMBITO_IDENTITY_PUBLIC_KEY_FILE": str(workdir / "identity.pub.pem"),
                                      "VOUCHERS_DATABASE_URL": url})
        runtime = Runtime.build(settings)
        runtime.migrate()
        today = dt.date.today()
        with session_scope(runtime.session_factory) as session:
            period = next(p.code for p in load_demo_data(session, DATA_DIR, today) if p.fund.code == FUND)
        bench = Bench(runtime, TokenIssuer((workdir / "identity.pem").read_bytes(), dt.timedelta(hours=1)),
                      period)
        scenarios = {"low contention": lambda t: COMUNI[t % len(COMUNI)], "one hot budget": lambda t: HOT}
        print(f"\n{backend}: {threads} threads x {ops} reservations, best of {rounds} rounds")
        print(f"{'scenario':<16}{'baseline/s':>12}{'service/s':>12}{'http/s':>10}"
              f"{'service:base':>14}{'http:base':>11}")
        for name, comune_of in scenarios.items():
            best = {"baseline": 0.0, "service": 0.0, "http": 0.0}
            for _ in range(rounds):  # interleaved, so all three see the same machine state
                for kind in best:
                    rate = timed(threads, ops, getattr(bench, kind)(comune_of))
                    best[kind] = max(best[kind], rate)
            print(f"{name:<16}{best['baseline']:>12.0f}{best['service']:>12.0f}{best['http']:>10.0f}"
                  f"{best['baseline'] / best['service']:>13.1f}x{best['baseline'] / best['http']:>10.1f}x")
        bench.server.shutdown()
        runtime.session_factory.kw["bind"].dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--ops", type=int, default=150, help="reservations per thread")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        run_backend(backend, args.ops, args.threads, args.rounds)
    print("\nservice:base and http:base = how many times slower than the bare INSERT (lower is better).")


if __name__ == "__main__":
    main()
