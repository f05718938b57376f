"""The project's own settings plus the benchmark's baseline routes (tests/perf/urls.py).

Only the URLconf differs from what `make serve` runs: the baselines are served by the same
gunicorn, middleware, database and cache as the project's endpoints they are compared with.
"""

from mpesa_site.settings import *  # noqa: F403

ROOT_URLCONF = "tests.perf.urls"
