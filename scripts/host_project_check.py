"""The README's host-project guide, followed as a new user would: build the wheel, install it in
a fresh virtual environment, `django-admin startproject`, apply the guide, migrate, check, run
the guide's host test, then pay one order end to end against the simulator.

    python3 scripts/host_project_check.py [--keep]

Needs only PyPI (for the wheel's dependencies and pytest) and loopback. The guide's files are
the README's code blocks marked `<!-- host-guide: PATH -->` (written to PATH in the host) or
`<!-- host-guide: PATH append -->` (appended); nothing else is added to the host project.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE_BLOCK = re.compile(
    r"<!-- host-guide: (?P<path>\S+)(?P<append> append)? -->\n```[a-z]*\n(?P<text>.*?)```", re.S
)
# What the wheel must hold besides Python modules.
WHEEL_MUST_HOLD = (
    "payments/py.typed",
    "payments/migrations/0001_initial.py",
    "payments/templates/payments/checkout.html",
    "payments/templates/admin/index.html",
    "payments/static/payments/checkout.js",
    "payments/static/payments/checkout.css",
    "payments/testing/__init__.py",
    "simulator/migrations/0001_initial.py",
)
WHEEL_MUST_NOT_HOLD = ("mpesa_site/", "tests/", "scripts/")
PAY_TIMEOUT = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="host-project-check-"))
    try:
        wheel = build_wheel(scratch)
        python = install(wheel, scratch / "venv")
        host = scratch / "host"
        create_host(python, host)
        pay_one_order(python, host)
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print("host project check passed")
    return 0


def step(message: str) -> None:
    print(f"-- {message}", flush=True)


def run(*command: str | Path, cwd: Path | None = None, env: dict | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"failed ({result.returncode}): {' '.join(map(str, command))}")
    return result.stdout


def build_wheel(scratch: Path) -> Path:
    """The wheel of a fresh copy of the tree (the files git knows, committed or not)."""
    step("build the wheel from a fresh copy of the tree")
    source = scratch / "src"
    listed = run("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT).split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", scratch / "dist", source)
    [wheel] = (scratch / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    missing = [name for name in WHEEL_MUST_HOLD if name not in names]
    stray = [name for name in names if name.startswith(WHEEL_MUST_NOT_HOLD)]
    if missing or stray:
        raise SystemExit(f"{wheel.name}: missing {missing}, should not hold {stray}")
    data = [n for n in names if n.startswith(("payments/templates/", "payments/static/"))]
    print(f"   {wheel.name}: {len(names)} files, {len(data)} templates and static files")
    return wheel


def install(wheel: Path, venv: Path) -> Path:
    step("install it in a fresh virtual environment (dependencies from PyPI)")
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "-q", wheel, *pinned("pytest", "pytest-django"))
    return python


def pinned(*names: str) -> list[str]:
    """The exact pins of ``names`` in requirements-dev.txt."""
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    return [line for line in lines if line.split("==")[0].strip().lower() in names]


def create_host(python: Path, host: Path) -> None:
    step("django-admin startproject hostsite; startapp shop; the guide's steps")
    host.mkdir()
    run(python.parent / "django-admin", "startproject", "hostsite", host)
    run(python, "manage.py", "startapp", "shop", cwd=host)
    blocks = list(GUIDE_BLOCK.finditer((ROOT / "README.md").read_text()))
    if not blocks:
        raise SystemExit("README.md has no <!-- host-guide: ... --> blocks")
    for block in blocks:
        target = host / block["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if block["append"]:
            with target.open("a") as file:
                file.write("\n" + block["text"])
        else:
            target.write_text(block["text"])
        print(f"   {'appended to' if block['append'] else 'wrote'} {block['path']}")
    step("makemigrations shop; migrate; check; makemigrations --check")
    run(python, "manage.py", "makemigrations", "shop", "-v0", cwd=host)
    run(python, "manage.py", "migrate", "-v0", cwd=host)
    print("   " + run(python, "manage.py", "check", cwd=host).strip())
    run(python, "manage.py", "makemigrations", "--check", "--dry-run", cwd=host)
    step("the guide's host test (payments.testing), with pytest")
    print("   " + run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=host).strip())


def pay_one_order(python: Path, host: Path) -> None:
    step("runserver in DEBUG with the simulator; pay one order through its checkout link")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SITE_ORIGIN": origin}
    created = run(python, "manage.py", "shell", "-c", CREATE_ORDER, cwd=host, env=env)
    order = json.loads(created.strip().splitlines()[-1])
    server = subprocess.Popen(
        [str(python), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=host,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(origin + "/admin/login/")
        page = fetch(origin + order["path"])
        start = re.search(r'data-start-url="([^"]+)"', page)[1]
        status = re.search(r'data-status-url="([^"]+)"', page)[1]
        script = re.search(r'<script src="([^"]+)"', page)[1]
        if not start.startswith("/shop/pay/pay/"):
            raise SystemExit(f"the checkout page starts payments at {start}, not under the prefix")
        # The page's script is a static file of the wheel, served by runserver in DEBUG.
        if "pay-form" not in fetch(origin + script):
            raise SystemExit(f"the checkout page's script {script} is not served")
        started = json.loads(fetch(origin + start, {"phone_number": "0708374149"}))
        print(f"   started payment {started['id']}: {started['status']}")
        follow = origin + status.replace("00000000-0000-0000-0000-000000000000", started["id"])
        deadline = time.monotonic() + PAY_TIMEOUT
        payment = started
        while not payment["final"] and time.monotonic() < deadline:
            time.sleep(1)
            payment = json.loads(fetch(follow))
        if payment["status"] != "success":
            raise SystemExit(f"the payment ended {payment['status']}, not success")
        print(f"   paid: M-Pesa receipt {payment['mpesa_receipt_number']}")
    except BaseException:
        server.terminate()
        sys.stderr.write(server.communicate(timeout=10)[0])
        raise
    server.terminate()
    server.wait(timeout=10)
    checked = run(python, "manage.py", "shell", "-c", CHECK_ORDER % order["id"], cwd=host)
    print("   " + checked.strip().splitlines()[-1])


CREATE_ORDER = """
import json
from payments.services.checkout import checkout_link_create, checkout_path
from shop.models import Order
order = Order.objects.create(total=10)
token = checkout_link_create(amount=10, account_reference=f"ORDER{order.pk}", for_object=order)
print(json.dumps({"id": order.pk, "path": checkout_path(token)}))
"""
CHECK_ORDER = """
from django.contrib.auth.models import Group
from shop.models import Order
order = Order.objects.get(pk=%s)
assert order.paid_at and order.mpesa_receipt, "the payment_succeeded handler did not run"
roles = {g.name: g.permissions.count() for g in Group.objects.all()}
assert roles.get("Finance clerk") and roles.get("Finance manager"), roles
print(f"order {order.pk} paid ({order.mpesa_receipt}); finance roles {roles}")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fetch(url)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer in {timeout:.0f}s")


def fetch(url: str, body: dict | None = None) -> str:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback)
        return answer.read().decode()


if __name__ == "__main__":
    sys.exit(main())
