"""Daraja's paths under /simulator/daraja/ (mounted only on a DEBUG server in simulator mode)."""

from django.urls import path

from simulator import views

urlpatterns = [
    path("oauth/v1/generate", views.oauth_generate),
    path("mpesa/stkpush/v1/processrequest", views.stk_push),
    path("mpesa/stkpushquery/v1/query", views.stk_query),
    path("mpesa/c2b/<str:version>/registerurl", views.c2b_register),
    path("mpesa/c2b/<str:version>/simulate", views.c2b_simulate),
    path("mpesa/b2c/v3/paymentrequest", views.b2c_payment),
    path("mpesa/reversal/v1/request", views.reversal),
    path("mpesa/accountbalance/v1/query", views.account_balance),
    path("mpesa/transactionstatus/v1/query", views.transaction_status),
    path("pulltransactions/v1/register", views.pull_register),
    path("pulltransactions/v1/query", views.pull_query),
    # Not Daraja: the org portal's statement download, for closing the day offline.
    path("statement.csv", views.statement_csv),
]
