"""Root URLs: the admin, the payments app, the API docs, and in development the simulator."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from payments.admin.login import ThrottledAdminAuthenticationForm
from payments.conf import payments_settings

# Failed admin logins are limited per username and per client address (PAYMENTS ADMIN_LOGIN_*).
admin.site.login_form = ThrottledAdminAuthenticationForm

# Daraja's paths, simulated. A server that serves them accepts the simulator's public
# credentials and fabricates payments, so only a DEBUG server in simulator mode mounts them
# (payments.E010 refuses simulator mode without DEBUG).
simulator_urlpatterns = [path("simulator/daraja/", include("simulator.urls"))]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("docs", RedirectView.as_view(pattern_name="api-docs", permanent=False)),
    path("docs/", RedirectView.as_view(pattern_name="api-docs", permanent=False)),
    path("", include("payments.urls")),
]
# API paths answer 404 in the API's JSON error shape; the admin and pages keep Django's HTML.
handler404 = "payments.api.exceptions.page_not_found"

if settings.DEBUG and payments_settings.ENVIRONMENT == "simulator":
    urlpatterns += simulator_urlpatterns
