"""Money out in the back office: refunds and payouts behind confirmation pages, the maker-checker
queues of payout and refund requests, and the balance page."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone

from payments.admin.common import (
    ReadOnlyAdminMixin,
    confirmation_page,
    first_submission,
    require,
)
from payments.admin.forms import PayoutForm, RefundForm
from payments.conf import payments_settings
from payments.daraja.phone import mask_phone_number
from payments.enums import InquiryStatus, TransactionStatus
from payments.exceptions import PaymentsError
from payments.models import (
    PayoutRequest,
    RefundRequest,
    Transaction,
)
from payments.selectors import (
    balance_shortcodes,
    balances_latest,
    shortcode_label,
)
from payments.services.audit import audit_record
from payments.services.balances import account_balances_request
from payments.services.payout_requests import (
    payout_request_approve,
    payout_request_needs_approval,
    payout_request_reject,
    payout_request_submit,
)
from payments.services.refund_requests import (
    refund_request_approve,
    refund_request_needs_approval,
    refund_request_reject,
    refund_request_submit,
)


class MoneyOutViewsMixin:
    """The refund, payout and balance pages of the ledger (TransactionAdmin)."""

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm("payments.refund")

    @admin.action(description="Refund via M-Pesa reversal (full amount)", permissions=["refund"])
    def refund_selected(self, request, queryset: QuerySet) -> HttpResponse:
        rows = [(t, t.amount - t.reversed_amount) for t in queryset]
        return confirmation_page(
            self,
            request,
            title="Refund via M-Pesa reversal",
            question="Refund the full remaining amount of these payments to the payers?",
            rows=[
                (t, f"KES {left} to {mask_phone_number(t.phone_number) or t.msisdn}")
                for t, left in rows
            ],
            action_url=reverse("admin:payments_transaction_refund_bulk"),
            button="Yes, refund",
        )

    def money_out_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("refund/", view(self.refund_bulk_view), name="payments_transaction_refund_bulk"),
            path("<uuid:pk>/refund/", view(self.refund_view), name="payments_transaction_refund"),
            path("payout/", view(self.payout_view), name="payments_transaction_payout"),
            path("balance/", view(self.balance_view), name="payments_transaction_balance"),
        ]

    def refund_bulk_view(self, request) -> HttpResponse:
        require(request, "refund")
        selected = self._selected(request)
        if not first_submission(request):
            return self._back()
        outcomes = Counter(
            self._refund(request, original, amount=None, remarks="Refund") for original in selected
        )
        self._report(request, outcomes["sent"], outcomes["failed"], "refund", "sent to M-Pesa")
        return self._back()

    def refund_view(self, request, pk) -> HttpResponse:
        require(request, "refund")
        original = get_object_or_404(Transaction, pk=pk)
        left = original.amount - original.reversed_amount
        form = RefundForm(request.POST or None, initial={"amount": left}, left=left)
        step = request.POST.get("step")
        if request.method == "POST" and form.is_valid():
            if step == "execute":
                if not first_submission(request):
                    return HttpResponseRedirect(
                        reverse("admin:payments_transaction_change", args=[original.pk])
                    )
                self._refund(
                    request,
                    original,
                    amount=form.cleaned_data["amount"],
                    remarks=form.cleaned_data["remarks"],
                )
                return HttpResponseRedirect(
                    reverse("admin:payments_transaction_change", args=[original.pk])
                )
            amount = form.cleaned_data["amount"]
            return self._page(
                request,
                "admin/payments/transaction/refund_confirm.html",
                title="Confirm the refund",
                nonce=uuid.uuid4().hex,
                original=original,
                form=form,
                amount=amount,
                remarks=form.cleaned_data["remarks"],
                needs_approval=refund_request_needs_approval(
                    maker=request.user, original=original, amount=amount
                ),
                threshold=int(payments_settings.REFUND_APPROVAL_THRESHOLD),
            )
        return self._page(
            request,
            "admin/payments/transaction/refund_form.html",
            title="Refund via M-Pesa reversal",
            original=original,
            form=form,
            left=left,
        )

    def _refund(self, request, original: Transaction, *, amount, remarks) -> str:
        """Refund (the service audits it) and say how it went: sent, parked or failed."""
        receipt = original.mpesa_receipt_number or original.pk
        try:
            refund = refund_request_submit(
                maker=request.user, transaction_ref=str(original.pk), amount=amount, remarks=remarks
            )
        except PaymentsError as exc:
            self.message_user(request, f"{receipt}: {exc.message}", messages.ERROR)
            return "failed"
        if refund.transaction is None:
            self.message_user(
                request,
                f"Refund of KES {refund.amount} for {receipt} is waiting for another manager's "
                "approval.",
                messages.WARNING,
            )
            return "parked"
        reversal = refund.transaction
        if reversal.status == TransactionStatus.FAILED:
            self.message_user(
                request,
                f"M-Pesa refused the refund of {receipt}: {reversal.result_desc}",
                messages.ERROR,
            )
            return "failed"
        self.message_user(
            request,
            f"Refund of KES {reversal.amount} for {receipt} sent to M-Pesa ({reversal.status}).",
            messages.SUCCESS,
        )
        return "sent"

    def payout_view(self, request) -> HttpResponse:
        require(request, "pay_out")
        form = PayoutForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            if request.POST.get("step") == "execute":
                if not first_submission(request):
                    return HttpResponseRedirect(reverse("admin:payments_payoutrequest_changelist"))
                return self._submit_payout(request, form, data)
            return self._page(
                request,
                "admin/payments/transaction/payout_confirm.html",
                title="Confirm the payout",
                nonce=uuid.uuid4().hex,
                form=form,
                data=data,
                needs_approval=payout_request_needs_approval(
                    maker=request.user, phone_number=data["phone_number"], amount=data["amount"]
                ),
                threshold=int(payments_settings.PAYOUT_APPROVAL_THRESHOLD),
            )
        return self._page(
            request,
            "admin/payments/transaction/payout_form.html",
            title="Send money (B2C payout)",
            form=form,
            threshold=int(payments_settings.PAYOUT_APPROVAL_THRESHOLD),
        )

    def _submit_payout(self, request, form, data) -> HttpResponse:
        try:
            payout = payout_request_submit(maker=request.user, **data)
        except PaymentsError as exc:
            form.add_error(None, exc.message)
            return self._page(
                request,
                "admin/payments/transaction/payout_form.html",
                title="Send money",
                form=form,
                threshold=int(payments_settings.PAYOUT_APPROVAL_THRESHOLD),
            )
        if payout.state == PayoutRequest.State.AWAITING_APPROVAL:
            self.message_user(
                request,
                f"Payout of KES {payout.amount} to {payout.phone_number} is waiting for "
                "another manager's approval.",
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:payments_payoutrequest_changelist"))
        status = payout.transaction.status
        level = messages.ERROR if status == TransactionStatus.FAILED else messages.SUCCESS
        self.message_user(
            request,
            f"Payout of KES {payout.amount} to {payout.phone_number}: {status}.",
            level,
        )
        return HttpResponseRedirect(
            reverse("admin:payments_transaction_change", args=[payout.transaction.pk])
        )

    def balance_view(self, request) -> HttpResponse:
        require(request, "view_balance")
        if request.method == "POST":
            try:
                inquiries = account_balances_request(user=request.user)
            except PaymentsError as exc:
                outcome = f"failed: {exc.message}"
                self.message_user(request, exc.message, messages.ERROR)
            else:
                asked = [(shortcode_label(i.metadata.get("shortcode", "")), i) for i in inquiries]
                outcome = "asked: " + ", ".join(f"{label} ({i.status})" for label, i in asked)
                sent = [label for label, i in asked if i.status != InquiryStatus.FAILED]
                self.message_user(
                    request,
                    f"M-Pesa was asked for the balance of {' and '.join(sent)}; refresh in a "
                    "few seconds.",
                )
                for label, inquiry in asked:
                    if inquiry.status == InquiryStatus.FAILED:
                        self.message_user(
                            request, f"{label}: {inquiry.result_desc}", messages.ERROR
                        )
            audit_record(actor=request.user, action="balance_refresh", outcome=outcome)
            return HttpResponseRedirect(reverse("admin:payments_transaction_balance"))
        now = timezone.now()
        accounts = [
            (shortcode_label(s.shortcode), s, now - s.reported_at) for s in balances_latest()
        ]
        return self._page(
            request,
            "admin/payments/balance.html",
            title="M-Pesa balance",
            accounts=accounts,
            shortcodes=list(balance_shortcodes().values()),
        )


class ApprovalRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A maker-checker queue: a second manager approves or rejects what another one asked."""

    list_filter = ("state",)
    change_form_template = "admin/payments/approval_request_change_form.html"
    kind: str  # "payout" or "refund", as in the permission approve_<kind>
    # approve(pk, checker=...) and reject(pk, checker=...) call the services; describe(request)
    # names the request in messages.
    approve: Callable[..., Any]
    reject: Callable[..., Any]
    describe: Callable[[Any], str]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def get_urls(self):
        name = f"payments_{self.model._meta.model_name}_decide"
        return [
            path("<int:pk>/decide/", self.admin_site.admin_view(self.decide_view), name=name),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not (object_id.isascii() and object_id.isdigit()):
            # No request has this id ("x", "%00"): the admin's "does not exist", not a 500.
            return super().change_view(request, object_id, form_url, extra_context)
        context = {
            **(extra_context or {}),
            "kind": self.kind,
            "may_decide": request.user.has_perm(f"payments.approve_{self.kind}"),
            "decide_url": reverse(
                f"admin:payments_{self.model._meta.model_name}_decide", args=[object_id]
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def decide_view(self, request, pk: int) -> HttpResponse:
        require(request, f"approve_{self.kind}")
        if request.method != "POST":
            raise PermissionDenied
        pending = get_object_or_404(self.model, pk=pk)
        approving = request.POST.get("decision") == "approve"
        try:
            if approving:
                sent = self.approve(pk, checker=request.user)
                self.message_user(
                    request,
                    f"Approved: {self.describe(sent)} sent to M-Pesa ({sent.transaction.status}).",
                    messages.SUCCESS,
                )
            else:
                self.reject(pk, checker=request.user)
                self.message_user(
                    request,
                    f"{self.kind.capitalize()} rejected; nothing was sent.",
                    messages.WARNING,
                )
        except PaymentsError as exc:
            audit_record(
                actor=request.user,
                action=f"{self.kind}_{'approved' if approving else 'rejected'}",
                amount=pending.amount,
                outcome=f"refused: {exc.message}",
                details={f"{self.kind}_request": pending.pk},
            )
            self.message_user(request, exc.message, messages.ERROR)
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
        )


@admin.register(PayoutRequest)
class PayoutRequestAdmin(ApprovalRequestAdmin):
    list_display = ("created_at", "state", "amount", "phone_number", "maker", "checker")
    kind = "payout"

    def approve(self, pk: int, *, checker: Any) -> PayoutRequest:
        return payout_request_approve(payout_request_id=pk, checker=checker)

    def reject(self, pk: int, *, checker: Any) -> PayoutRequest:
        return payout_request_reject(payout_request_id=pk, checker=checker)

    def describe(self, request: PayoutRequest) -> str:
        return f"KES {request.amount} to {request.phone_number}"


@admin.register(RefundRequest)
class RefundRequestAdmin(ApprovalRequestAdmin):
    list_display = ("created_at", "state", "amount", "original", "maker", "checker")
    kind = "refund"

    def approve(self, pk: int, *, checker: Any) -> RefundRequest:
        return refund_request_approve(refund_request_id=pk, checker=checker)

    def reject(self, pk: int, *, checker: Any) -> RefundRequest:
        return refund_request_reject(refund_request_id=pk, checker=checker)

    def describe(self, request: RefundRequest) -> str:
        return f"a refund of KES {request.amount} for {request.original.mpesa_receipt_number}"
