"""Screenshots of the back office for the README: `make screenshots`.

Starts this project on a scratch SQLite database in simulator mode, takes a few payments through
the real API (the simulator posts the callbacks), logs in as a finance manager in headless
Chromium and saves the transaction list, a refund confirmation, the dashboard, and the report of
the day's M-Pesa statement (downloaded from the simulator; one payment's confirmation was never
delivered, so the statement holds a line the ledger lacks).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SEED = """
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
manager = User.objects.create_user("manager", password="manager-pass-1", is_staff=True)
manager.groups.add(Group.objects.get(name="Finance manager"))
api = User.objects.create_user("shop", password="shop-pass-1")
print(Token.objects.create(user=api).key)
"""
PAYMENTS = [
    ("0708374149", 1250, "INV1001"),
    ("0711222333", 480, "INV1002"),
    ("0700000001", 2300, "INV1003"),
    ("0722333444", 990, "INV1004"),
    ("0700000003", 150, "INV1005"),
    ("0733444555", 3600, "INV1006"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise SystemExit("timed out waiting for the server")


def main() -> None:
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="mpesa-screens-"))
    env = {
        **os.environ,
        "DJANGO_DEBUG": "true",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "CACHE_URL": "",
        "MPESA_ENVIRONMENT": "simulator",
        "MPESA_SIMULATOR_ORIGIN": base,
        "MPESA_SIMULATOR_CALLBACK_DELAY": "0.3",
        "MPESA_CALLBACK_BASE_URL": "",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    seeded = subprocess.run(
        [*manage, "shell", "-c", SEED],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    token = seeded.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(f"{base}/admin/login/"))
        headers = {"Authorization": f"Token {token}"}
        for phone, amount, reference in PAYMENTS:
            requests.post(
                f"{base}/api/v1/payments/mpesa/stk-push",
                json={"phone_number": phone, "amount": amount, "account_reference": reference},
                headers=headers,
                timeout=30,
            ).raise_for_status()
        wait_until(lambda: _all_settled(base, headers))
        # A till payment whose confirmation never reaches us: no C2B URLs are registered here.
        subprocess.run(
            [
                *manage,
                "mpesa_simulate_c2b",
                "--phone",
                "0722333444",
                "--amount",
                "750",
                "--bill-ref",
                "INV1007",
            ],
            env=env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        statement = requests.get(f"{base}/simulator/daraja/statement.csv", timeout=30)
        statement.raise_for_status()
        OUT.mkdir(parents=True, exist_ok=True)
        name = statement.headers["Content-Disposition"].split('"')[1]
        _shoot(base, name, statement.content)
    finally:
        server.terminate()
        server.wait(10)
    print(f"screenshots written to {OUT.relative_to(ROOT)}/")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _all_settled(base: str, headers: dict) -> bool:
    rows = requests.get(
        f"{base}/api/v1/payments/mpesa/transactions", headers=headers, timeout=10
    ).json()["results"]
    return all(row["status"] not in ("pending", "unknown") for row in rows)


def _shoot(base: str, statement_name: str, statement: bytes) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", "manager")
        page.fill("#id_password", "manager-pass-1")
        page.click("input[type=submit]")
        page.screenshot(path=OUT / "dashboard.png", full_page=True)
        page.goto(f"{base}/admin/payments/transaction/")
        page.screenshot(path=OUT / "transaction-list.png", full_page=True)
        page.goto(f"{base}/admin/payments/transaction/?status__exact=success")
        page.click("#result_list tbody tr:first-child th a")
        page.click("a.refund-link")
        page.fill("#id_amount", "200")
        page.click("input[type=submit]")
        page.screenshot(path=OUT / "refund-confirmation.png", full_page=True)
        page.goto(f"{base}/admin/payments/statementimport/upload/")
        page.set_input_files(
            "#id_file",
            files=[{"name": statement_name, "mimeType": "text/csv", "buffer": statement}],
        )
        page.click("input[type=submit]")
        page.screenshot(path=OUT / "statement-report.png", full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
