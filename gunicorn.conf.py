"""gunicorn's configuration for `make serve`: everything from the environment (or .env).

GUNICORN_BIND          where to listen (127.0.0.1:8000: behind a reverse proxy on this host)
GUNICORN_WORKERS       processes (2 x cores + 1)
GUNICORN_THREADS       threads per process (4); more than 1 runs the gthread worker
GUNICORN_TIMEOUT       seconds a sync worker (GUNICORN_THREADS=1) may spend on one request
                       before it is replaced (120)
GUNICORN_GRACEFUL_TIMEOUT  seconds a stopping worker has to finish its requests (30)
GUNICORN_KEEPALIVE     seconds an idle proxy connection is kept (5)
GUNICORN_MAX_REQUESTS  requests after which a worker is replaced (0: never)
GUNICORN_FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-* gunicorn believes (127.0.0.1,::1)

A request that calls Daraja (a push, a payout, a refund; a balance asks two shortcodes) waits
at most MPESA_HTTP_DEADLINE seconds (45) per call: the timeout must stay above twice that. A
worker killed mid-call leaves its payment `unknown`, settled by reconciliation and never sent
twice, but its client gets no answer. Status polls never wait for Daraja (README, "Deployment").
"""

import multiprocessing
import os
from pathlib import Path

import environ

# The same .env as the Django settings, if any; the process environment wins.
environ.Env.read_env(Path(__file__).resolve().parent / ".env", overwrite=False)


def _number(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


wsgi_app = "mpesa_site.wsgi:application"
bind = os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000"
workers = _number("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1)
threads = _number("GUNICORN_THREADS", 4)
timeout = _number("GUNICORN_TIMEOUT", 120)
graceful_timeout = _number("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _number("GUNICORN_KEEPALIVE", 5)
max_requests = _number("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10

# No access log: the app logs one line per request itself (payments.requests), with the route
# name instead of the path, whose callback segments are secrets. Errors go to stderr.
accesslog = None
errorlog = "-"
# The proxy in front sets X-Forwarded-Proto; Django reads it (DJANGO_SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"
# gunicorn's own control socket is not needed to run or stop it.
control_socket_disable = True


def worker_exit(server, worker):
    """Let a status poll's STK query that is still running end before the worker does."""
    from payments.services.background import background_wait

    background_wait(timeout=5)
