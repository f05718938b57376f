"""The project's URLs plus /bench/...: the bare baselines the benchmarks compare with."""

from django.urls import path

from mpesa_site.urls import handler404  # noqa: F401
from mpesa_site.urls import urlpatterns as project_urlpatterns
from tests.perf.views import BareRead, bare_insert

urlpatterns = [
    path("bench/insert/<str:token>", bare_insert),
    path("bench/read/<str:checkout_request_id>", BareRead.as_view()),
    *project_urlpatterns,
]
