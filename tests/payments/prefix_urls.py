"""A host project's URLconf that mounts the app under a prefix of its own."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("shop/pay/", include("payments.urls")),
]
handler404 = "payments.api.exceptions.page_not_found"
