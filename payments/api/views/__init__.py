"""API views: validate input, call one service or selector, shape the answer. No business rules.

One module per use case; the URLs import the views from here.
"""

from payments.api.views.c2b import RegisterUrlsView
from payments.api.views.checkout import CheckoutLinkView, CheckoutPayView, CheckoutStatusView
from payments.api.views.money_out import (
    B2CPayoutView,
    BalanceView,
    ReversalView,
    TransactionRefreshView,
)
from payments.api.views.payments import StkPushStatusView, StkPushView, TransactionViewSet

__all__ = [
    "B2CPayoutView",
    "BalanceView",
    "CheckoutLinkView",
    "CheckoutPayView",
    "CheckoutStatusView",
    "RegisterUrlsView",
    "ReversalView",
    "StkPushStatusView",
    "StkPushView",
    "TransactionRefreshView",
    "TransactionViewSet",
]
