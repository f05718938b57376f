"""A scripted walk through a running `make run`: create a checkout link, pay it, poll to the end.

    python scripts/walk.py [--base http://127.0.0.1:8000] [--phone 0708374149]

Uses the DEBUG-only demo user that `make run` creates. Exits 0 when the payment succeeds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--phone", default="0708374149")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    base = args.base.rstrip("/")

    token = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "drf_create_token", "demo"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[2]
    link = requests.post(
        f"{base}/api/v1/payments/mpesa/checkout",
        json={"amount": 10, "account_reference": "WALK1", "description": "Scripted walk"},
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    link.raise_for_status()
    url = link.json()["url"]
    print(f"checkout link: {url}")

    started = requests.post(f"{url}/start", json={"phone_number": args.phone}, timeout=30)
    started.raise_for_status()
    payment = started.json()
    print(f"payment {payment['id']}: {payment['status']} - {payment['message']}")

    deadline = time.monotonic() + args.timeout
    while not payment["final"] and time.monotonic() < deadline:
        time.sleep(2)  # the checkout page polls every 2 s; so does this walk
        payment = requests.get(f"{url}/status/{payment['id']}", timeout=30).json()
        print(f"  {payment['status']}: {payment['message']}")
    if payment["status"] != "success":
        print(f"walk failed: {payment['status']}")
        return 1
    print(f"paid: M-Pesa receipt {payment['mpesa_receipt_number']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
