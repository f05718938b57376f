"""URLs of the payments app. Paths work with and without a trailing slash."""

from django.urls import include, re_path
from rest_framework.routers import SimpleRouter

from payments.api.views import StkPushStatusView, StkPushView, TransactionViewSet
from payments.views.callbacks import StkCallbackView

app_name = "payments"


class OptionalSlashRouter(SimpleRouter):
    """Routes that match with and without the trailing slash (the app's contract)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("transactions", TransactionViewSet, basename="transaction")

CALLBACK_SEGMENT = r"(?P<callback_token>[A-Za-z0-9_-]{16,64})"

urlpatterns = [
    re_path(r"^api/v1/payments/mpesa/stk-push/?$", StkPushView.as_view(), name="stk-push"),
    re_path(
        r"^api/v1/payments/mpesa/stk-push/status/(?P<checkout_request_id>[^/]+)/?$",
        StkPushStatusView.as_view(),
        name="stk-push-status",
    ),
    re_path(r"^api/v1/payments/mpesa/", include(router.urls)),
    # Not under /mpesa/: Daraja refuses callback URLs containing that word (API.md §4.1).
    re_path(
        rf"^api/v1/payments/callbacks/stk/{CALLBACK_SEGMENT}/?$",
        StkCallbackView.as_view(),
        name="stk-callback",
    ),
]
