"""`make serve`'s first step: refuse to start a production server that is not configured as one.

Checks, with one clear message each, what README "Deployment" lists: DJANGO_DEBUG off, a real
DJANGO_SECRET_KEY, allowed hosts, then Django's and the app's deployment checks (`check
--deploy`: no simulator mode, Daraja credentials, an https callback URL, the callback secret...).
Exits 1 on the first failure; nothing is migrated or served until it passes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = 'README.md, "Deployment"'


def fail(message: str) -> None:
    sys.stderr.write(f"make serve: {message}\nSee {GUIDE} for what a server needs.\n")
    raise SystemExit(1)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mpesa_site.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        fail(str(exc))
    from django.conf import settings

    if settings.DEBUG:
        fail(
            "DJANGO_DEBUG is true. make serve is the production server: set DJANGO_DEBUG=false "
            "(make run is the development server, with the simulator)."
        )
    if not settings.ALLOWED_HOSTS:
        fail(
            "DJANGO_ALLOWED_HOSTS is empty: without DEBUG every request would be refused. Set "
            "it to the host names of this site (e.g. pay.example.co.ke)."
        )
    try:
        call_command("check", deploy=True, fail_level="ERROR")
    except SystemCheckError as exc:
        fail(f"the deployment checks failed:\n{exc}")


if __name__ == "__main__":
    main()
