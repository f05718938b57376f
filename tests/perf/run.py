"""`make bench`: the hot paths on gunicorn + PostgreSQL + Redis on loopback, each against a
baseline measured in the same run on the same setup, printed as one Markdown table.

    python -m tests.perf.run                     # 10k and 300k ledger rows (a few minutes)
    BENCH_QUICK=1 python -m tests.perf.run       # small counts, for iterating
    BENCH_ROWS=10000,300000,1000000 python -m tests.perf.run   # also 1M rows (slow to seed)

Creates its own database (BENCH_DATABASE, mpesa_bench) and uses one Redis database
(BENCH_REDIS_URL, redis://127.0.0.1:6379/14), emptied first; drops the database at the end
unless BENCH_KEEP=1. gunicorn runs gunicorn.conf.py with 4 sync workers and the production
defaults (DEBUG off, persistent connections); only the URLconf adds the /bench/ baselines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASE = os.environ.get("BENCH_DATABASE", "mpesa_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ROWS = [
    int(n)
    for n in (os.environ.get("BENCH_ROWS") or ("2000,20000" if QUICK else "10000,300000")).split(
        ","
    )
]
CALLBACKS = 300 if QUICK else 2000
POLLERS = 200
POLLS_PER_CLIENT = 5 if QUICK else 20
PUSHES_TIMED = 50 if QUICK else 200
PUSHES_OAUTH = 200 if QUICK else 1000
PAGES = 5 if QUICK else 15
WORKERS = 4
# BENCH_ONLY=callback_ingestion,status_polling,push_overhead,oauth_calls,lists: a subset.
ONLY = [name for name in os.environ.get("BENCH_ONLY", "").split(",") if name]


def database_url() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"


def server_environment(daraja_origin: str, port: int) -> dict[str, str]:
    """What the gunicorn and this process run with: production defaults, loopback services."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MPESA_"))},
        "DJANGO_SETTINGS_MODULE": "tests.perf.settings",
        "DJANGO_SECRET_KEY": "bench-only-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789",
        "DJANGO_DEBUG": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,testserver",
        # Plain http on loopback: no redirect to https, which the proxy would otherwise do.
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": database_url(),
        "CACHE_URL": REDIS_URL,
        "MPESA_ENVIRONMENT": "sandbox",
        "MPESA_BASE_URL": daraja_origin,
        "MPESA_CONSUMER_KEY": "bench-consumer-key",
        "MPESA_CONSUMER_SECRET": "bench-consumer-secret",
        "MPESA_SHORTCODE": "174379",
        "MPESA_PASSKEY": "bench-passkey-0123456789",
        "MPESA_CALLBACK_BASE_URL": "https://pay.example.co.ke",
        "MPESA_CALLBACK_SECRET": "bench-callback-secret-0123456789abcdef",
        "MPESA_CALLBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
        # Both limits are still checked on every push; they are only high enough not to refuse.
        "MPESA_STK_RATE_PER_PHONE": "1000000/min",
        "MPESA_STK_RATE_PER_USER": "1000000/min",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(WORKERS),
        "GUNICORN_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.05)
    raise SystemExit(f"bench: timed out waiting for {what}")


@contextmanager
def scratch_database():
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    try:
        yield
    finally:
        if os.environ.get("BENCH_KEEP", "") in ("", "0"):
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path):
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and gunicorn)
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="mpesa-bench-"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    with ExitStack() as stack:
        stack.enter_context(scratch_database())
        port_file = scratch / "daraja.port"
        stack.enter_context(
            process(
                [sys.executable, "-m", "tests.perf.daraja", str(port_file)],
                dict(os.environ, PYTHONPATH=str(ROOT)),
                scratch / "daraja.log",
            )
        )
        wait_for("the Daraja double", lambda: port_file.read_text().strip())
        daraja = f"http://127.0.0.1:{port_file.read_text().strip()}"
        port = free_port()
        env = {**server_environment(daraja, port), "DJANGO_STATIC_ROOT": str(scratch / "static")}
        # As make serve: the admin's pages need the hashed static files' manifest.
        for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
            subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
                [sys.executable, "manage.py", *command, "-v0"], cwd=ROOT, env=env, check=True
            )
        os.environ.update(env)
        import django

        django.setup()
        from tests.perf import figures

        gunicorn = stack.enter_context(
            process(
                [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"],
                env,
                scratch / "gunicorn.log",
            )
        )
        origin = f"http://127.0.0.1:{port}"
        wait_for("gunicorn", lambda: requests.get(f"{origin}/healthz", timeout=2).ok)
        print(
            f"bench: gunicorn {WORKERS} sync workers at {origin}, database {DATABASE}, "
            f"Redis {REDIS_URL}, Daraja double {daraja}",
            flush=True,
        )
        table = figures.run_all(origin=origin, daraja=daraja, log=scratch / "gunicorn.log")
        if gunicorn.poll() is not None:
            raise SystemExit(f"bench: gunicorn exited: see {scratch / 'gunicorn.log'}")
    print()
    print(table)
    shutil.rmtree(scratch, ignore_errors=True)  # kept, with the logs, when a step failed


if __name__ == "__main__":
    main()
