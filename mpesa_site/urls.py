"""Root URLs: the admin, the payments app, and the API docs."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("docs", RedirectView.as_view(pattern_name="api-docs", permanent=False)),
    path("docs/", RedirectView.as_view(pattern_name="api-docs", permanent=False)),
    # Daraja's paths, simulated; they answer 404 unless MPESA_ENVIRONMENT is "simulator".
    path("simulator/daraja/", include("simulator.urls")),
    path("", include("payments.urls")),
]
