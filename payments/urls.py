"""URLs of the payments app. Paths work with and without a trailing slash."""

from django.urls import include, re_path
from rest_framework.routers import SimpleRouter

from payments.api.views import (
    B2CPayoutView,
    BalanceView,
    CheckoutLinkView,
    CheckoutPayView,
    CheckoutStatusView,
    RegisterUrlsView,
    ReversalView,
    StkPushStatusView,
    StkPushView,
    TransactionRefreshView,
    TransactionViewSet,
)
from payments.enums import CallbackKind as K
from payments.views.callbacks import C2BCallbackView, ResultCallbackView
from payments.views.pages import checkout_page

app_name = "payments"


class OptionalSlashRouter(SimpleRouter):
    """Routes that match with and without the trailing slash (the app's contract)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("transactions", TransactionViewSet, basename="transaction")

API = r"^api/v1/payments/mpesa/"
# Not under /mpesa/: Daraja refuses callback URLs containing that word (API.md §4.1).
CALLBACKS = r"^api/v1/payments/callbacks/"
CALLBACK_SEGMENT = r"(?P<callback_token>[A-Za-z0-9_-]{16,64})"
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# django.core.signing tokens: URL-safe base64 and colons.
CHECKOUT_SEGMENT = r"(?P<token>[A-Za-z0-9_:.-]{20,2000})"
# A segment of any other text, but never a NUL ("%00"): PostgreSQL refuses it in a query.
FREE_SEGMENT = r"[^/\x00]+"


def result_route(path: str, kind: str, name: str):
    view = ResultCallbackView.as_view(kind=kind)
    return re_path(rf"{CALLBACKS}{path.format(token=CALLBACK_SEGMENT)}/?$", view, name=name)


urlpatterns = [
    re_path(rf"{API}stk-push/?$", StkPushView.as_view(), name="stk-push"),
    re_path(
        rf"{API}stk-push/status/(?P<checkout_request_id>{FREE_SEGMENT})/?$",
        StkPushStatusView.as_view(),
        name="stk-push-status",
    ),
    re_path(rf"{API}b2c/?$", B2CPayoutView.as_view(), name="b2c"),
    re_path(rf"{API}reverse/?$", ReversalView.as_view(), name="reverse"),
    re_path(rf"{API}balance/?$", BalanceView.as_view(), name="balance"),
    re_path(rf"{API}register-urls/?$", RegisterUrlsView.as_view(), name="register-urls"),
    re_path(
        rf"{API}transactions/(?P<pk>{UUID})/refresh/?$",
        TransactionRefreshView.as_view(),
        name="transaction-refresh",
    ),
    re_path(rf"{API}checkout/?$", CheckoutLinkView.as_view(), name="checkout-link"),
    re_path(API, include(router.urls)),
    re_path(rf"^pay/{CHECKOUT_SEGMENT}/?$", checkout_page, name="checkout-page"),
    re_path(rf"^pay/{CHECKOUT_SEGMENT}/start/?$", CheckoutPayView.as_view(), name="checkout-pay"),
    re_path(
        rf"^pay/{CHECKOUT_SEGMENT}/status/(?P<transaction_id>{UUID})/?$",
        CheckoutStatusView.as_view(),
        name="checkout-status",
    ),
    result_route("stk/{token}", K.STK, "stk-callback"),
    result_route("b2c/{token}/result", K.B2C_RESULT, "b2c-result"),
    result_route("b2c/{token}/timeout", K.B2C_TIMEOUT, "b2c-timeout"),
    result_route("reversal/{token}/result", K.REVERSAL_RESULT, "reversal-result"),
    result_route("reversal/{token}/timeout", K.REVERSAL_TIMEOUT, "reversal-timeout"),
    result_route("balance/{token}/result", K.BALANCE_RESULT, "balance-result"),
    result_route("balance/{token}/timeout", K.BALANCE_TIMEOUT, "balance-timeout"),
    result_route("status/{token}/result", K.STATUS_RESULT, "status-result"),
    result_route("status/{token}/timeout", K.STATUS_TIMEOUT, "status-timeout"),
    re_path(
        rf"{CALLBACKS}c2b/(?P<secret>{FREE_SEGMENT})/validation/?$",
        C2BCallbackView.as_view(kind=K.C2B_VALIDATION),
        name="c2b-validation",
    ),
    re_path(
        rf"{CALLBACKS}c2b/(?P<secret>{FREE_SEGMENT})/confirmation/?$",
        C2BCallbackView.as_view(kind=K.C2B_CONFIRMATION),
        name="c2b-confirmation",
    ),
    re_path(
        rf"{CALLBACKS}c2b/(?P<secret>{FREE_SEGMENT})/pull/?$",
        C2BCallbackView.as_view(kind=K.PULL_NOTICE),
        name="c2b-pull-notice",
    ),
]
