"""cProfile of one hot path in process, through the whole WSGI stack (middleware included),
against PostgreSQL: where a request's time goes, beside the baseline's.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mpesa_bench_profile \\
        python -m tests.perf.profile callback|poll|push [COUNT]

Creates the database if needed (migrated), Redis as CACHE_URL (default db 14), and for a push a
Daraja double process. Prints the top functions by cumulative and by own time.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.perf import run


def main() -> None:
    what = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    scratch = Path(tempfile.mkdtemp(prefix="mpesa-profile-"))
    port_file = scratch / "daraja.port"
    daraja_process = subprocess.Popen(  # noqa: S603 (our own interpreter)
        [sys.executable, "-m", "tests.perf.daraja", str(port_file)], cwd=run.ROOT
    )
    try:
        run.wait_for("the Daraja double", lambda: port_file.read_text().strip())
        env = run.server_environment(f"http://127.0.0.1:{port_file.read_text().strip()}", 0)
        env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or env["DATABASE_URL"]
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=run.ROOT, check=True
        )
        import django

        django.setup()
        profile(what, count)
    finally:
        daraja_process.terminate()
        daraja_process.wait()


def profile(what: str, count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from tests.perf.figures import Bench

    users = get_user_model()
    owner, _ = users.objects.get_or_create(username="profile-owner")
    token, _ = Token.objects.get_or_create(user=owner)
    bench = Bench.__new__(Bench)
    bench.owner = owner
    auth = {"Authorization": f"Token {token.key}"}
    client = Client(headers=auth)
    tag = f"p{int(time.time())}"
    if what == "callback":
        pushes = bench.pending_pushes(tag, 2 * count)
        calls = [
            (
                "post",
                f"/api/v1/payments/callbacks/stk/{p.callback_token}",
                bench.success_callback(p, int(time.time()) * 10_000 + n),
            )
            for n, p in enumerate(pushes[:count])
        ]
        bare = [
            ("post", f"/bench/insert/{p.callback_token}", bench.success_callback(p, n))
            for n, p in enumerate(pushes[count:])
        ]
    elif what == "poll":
        from datetime import timedelta

        # As in the bench: each push polled many times, asked about once per interval.
        pushes = bench.pending_pushes(tag, max(1, count // 20), age=timedelta(minutes=1)) * 20
        calls = [
            ("get", f"/api/v1/payments/mpesa/stk-push/status/{p.checkout_request_id}", None)
            for p in pushes
        ]
        bare = [("get", f"/bench/read/{p.checkout_request_id}", None) for p in pushes]
    else:
        calls = [
            (
                "post",
                "/api/v1/payments/mpesa/stk-push",
                {"phone_number": f"2547{n:08d}", "amount": 10, "account_reference": "BENCH"},
            )
            for n in range(count)
        ]
        bare = []
    for label, requests_ in (("bare", bare), (what, calls)):
        if not requests_:
            continue
        send(client, requests_[:5])  # warm: imports, connections, the OAuth token
        half = (len(requests_) - 5) // 2
        began, cpu = time.perf_counter(), time.process_time()
        send(client, requests_[5 : 5 + half])
        wall = (time.perf_counter() - began) / half * 1000
        cpu = (time.process_time() - cpu) / half * 1000
        print(f"\n=== {label}: {wall:.2f} ms per request, {cpu:.2f} ms CPU (no profiler) ===")
        requests_ = requests_[half:]
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.enable()
        send(client, requests_[5:])
        profiler.disable()
        took = (time.perf_counter() - began) / (len(requests_) - 5) * 1000
        if os.environ.get("PROFILE_OUT"):  # for pstats: python -m pstats FILE
            profiler.dump_stats(f"{os.environ['PROFILE_OUT']}.{label}")
        print(f"\n=== {label}: {took:.2f} ms per request (under the profiler) ===")
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(35)
            print(out.getvalue()[-9000:])


def send(client, calls) -> None:
    import json

    for method, path, body in calls:
        if method == "get":
            response = client.get(path)
        else:
            response = client.post(path, json.dumps(body), content_type="application/json")
        assert response.status_code < 400, (path, response.status_code, response.content[:200])


if __name__ == "__main__":
    main()
