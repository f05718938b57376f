"""The finance back office: a read-only ledger, and actions that call the same services as the API.

Every view that moves money or changes a status checks its permission itself (not only by hiding a
button), asks for confirmation, and leaves an AuditRecord.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from payments.conf import payments_settings
from payments.daraja.errors import DarajaError, InvalidPhoneNumberError
from payments.daraja.jsontext import loads_bounded
from payments.daraja.phone import mask_phone_number, normalize_phone_number
from payments.enums import B2CCommand, InquiryStatus, TransactionStatus
from payments.exceptions import PaymentsError
from payments.models import (
    AuditRecord,
    BalanceSnapshot,
    CallbackEvent,
    PayoutRequest,
    RefundRequest,
    Transaction,
)
from payments.selectors import (
    balance_shortcodes,
    balances_latest,
    callback_events_needing_a_person,
    shortcode_label,
)
from payments.services.audit import audit_record
from payments.services.balances import account_balances_request
from payments.services.callbacks import callback_event_process
from payments.services.idempotency import (
    idempotency_key_claim,
    idempotency_key_complete,
    request_fingerprint,
)
from payments.services.inquiries import transaction_refresh
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

STATUS_COLOURS = {
    TransactionStatus.SUCCESS: "#1b8a3a",
    TransactionStatus.PENDING: "#8a6d1b",
    TransactionStatus.UNKNOWN: "#8a6d1b",
    TransactionStatus.AWAITING_RECEIPT: "#2f6f8a",
    TransactionStatus.FAILED: "#b3261e",
    TransactionStatus.CANCELLED: "#5c6673",
    TransactionStatus.TIMEOUT: "#5c6673",
    TransactionStatus.REVERSED: "#3b4cc0",
}
CSV_FIELDS = (
    "id",
    "created_at",
    "transaction_type",
    "status",
    "amount",
    "reversed_amount",
    "phone_number",
    "mpesa_receipt_number",
    "account_reference",
    "result_code",
    "result_desc",
    "transaction_date",
    "needs_review",
)


def first_submission(request: HttpRequest) -> bool:
    """Whether this confirmation form is posted for the first time.

    Each confirmation page carries a one-time ``nonce``; a double click, a resubmission after
    "back" or a retried request finds it used, and moves no money a second time.
    """
    nonce = request.POST.get("nonce", "")
    if not nonce:
        messages.warning(request, "Start again from the confirmation page: nothing was done.")
        return False
    try:
        claim = idempotency_key_claim(
            user=request.user,
            key=f"admin-confirmation:{nonce}",
            fingerprint=request_fingerprint(method="POST", path=request.path, data={}),
        )
    except PaymentsError:
        claim = None
    if claim is None or not claim.process:
        messages.warning(
            request, "This confirmation was already submitted: nothing was done again."
        )
        return False
    idempotency_key_complete(record=claim.record, status=200, body={})
    return True


def require(request: HttpRequest, permission: str) -> None:
    """Refuse with 403 unless the staff user holds ``payments.<permission>``."""
    if not (request.user.is_active and request.user.is_staff):
        raise PermissionDenied
    if not request.user.has_perm(f"payments.{permission}"):
        raise PermissionDenied


def confirmation_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    title: str,
    question: str,
    rows: list,
    action_url: str,
    button: str,
) -> TemplateResponse:
    """The page between choosing an action and doing it; it posts the ids to ``action_url``."""
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "rows": rows,
        "action_url": action_url,
        "button": button,
        "opts": opts,
        "cancel_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "nonce": uuid.uuid4().hex,
    }
    return TemplateResponse(request, "admin/payments/confirm_action.html", context)


class ReadOnlyAdminMixin:
    """Records of what happened: viewable, never added, edited or deleted through the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True


class CallbackEventInline(ReadOnlyInline):
    model = CallbackEvent
    fk_name = "transaction"
    fields = ("received_at", "kind", "outcome", "error", "source_ip")
    readonly_fields = fields
    verbose_name_plural = "Callbacks from M-Pesa"


class ReversalInline(ReadOnlyInline):
    model = Transaction
    fk_name = "original"
    fields = ("created_at", "status", "amount", "mpesa_receipt_number", "result_desc", "user")
    readonly_fields = fields
    verbose_name = "reversal"
    verbose_name_plural = "Reversals (refunds)"


class RefundForm(forms.Form):
    amount = forms.IntegerField(min_value=1, label="Amount to refund (KES)")
    remarks = forms.CharField(max_length=100, min_length=2, initial="Refund")

    def __init__(self, *args: Any, left: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left = left

    def clean_amount(self) -> int:
        # Checked again, under a row lock, when the refund is made; this is for the clerk.
        amount = self.cleaned_data["amount"]
        if amount > self.left:
            raise forms.ValidationError(f"Only KES {self.left} is left to refund.")
        return amount


class PayoutForm(forms.Form):
    phone_number = forms.CharField(max_length=32, label="Phone number")
    amount = forms.IntegerField(label="Amount (KES)")
    command_id = forms.ChoiceField(choices=B2CCommand.choices, label="Command")
    remarks = forms.CharField(max_length=100, min_length=2)
    occasion = forms.CharField(max_length=100, required=False)

    def clean_phone_number(self) -> str:
        try:
            return normalize_phone_number(self.cleaned_data["phone_number"])
        except InvalidPhoneNumberError as exc:
            raise forms.ValidationError(exc.message[:1].upper() + exc.message[1:]) from None

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        low, high = payments_settings.B2C_MIN_AMOUNT, payments_settings.B2C_MAX_AMOUNT
        if not low <= amount <= high:
            raise forms.ValidationError(f"Payouts are {low} to {high} shillings.")
        return amount


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "transaction_type",
        "status_badge",
        "masked_phone",
        "amount",
        "mpesa_receipt_number",
        "account_reference",
        "needs_review",
    )
    list_filter = ("status", "transaction_type", "created_at", "needs_review")
    search_fields = (
        "mpesa_receipt_number",
        "account_reference",
        "checkout_request_id",
        "conversation_id",
        "originator_conversation_id",
    )
    search_help_text = (
        "Receipt, phone (any form), account reference, CheckoutRequestID, conversation ids"
    )
    date_hierarchy = "created_at"
    list_per_page = 50
    actions = ("refund_selected", "query_status_selected", "export_selected")
    inlines = (CallbackEventInline, ReversalInline)
    change_list_template = "admin/payments/transaction/change_list.html"
    change_form_template = "admin/payments/transaction/change_form.html"

    # -- a read-only ledger (ReadOnlyAdminMixin) ------------------------------------------------

    # The callback token is a credential: whoever knows it can post results for the row.
    exclude = ("callback_token",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Transaction) -> str:
        colour = STATUS_COLOURS.get(obj.status, "#5c6673")
        return format_html(
            '<span style="color:#fff;background:{};padding:2px 8px;border-radius:10px;'
            'font-size:11px;font-weight:600">{}</span>',
            colour,
            obj.get_status_display(),
        )

    @admin.display(description="Phone")
    def masked_phone(self, obj: Transaction) -> str:
        return mask_phone_number(obj.phone_number) or (obj.msisdn[:16] if obj.msisdn else "")

    def get_search_results(self, request, queryset, search_term):
        # The changelist passes the queryset already narrowed by the filters: keep them.
        filtered = queryset
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            try:
                phone = normalize_phone_number(term)
            except InvalidPhoneNumberError:
                phone = None
            extra = Q(phone_number=phone) if phone else Q(phone_number__icontains=term)
            queryset |= filtered.filter(extra)
        return queryset, may_have_duplicates

    # -- permissions of the actions ------------------------------------------------------------

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm("payments.refund")

    def has_query_status_permission(self, request) -> bool:
        return request.user.has_perm("payments.query_status")

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("payments.export_transactions")

    # -- actions: each shows a confirmation page posting to a view that checks again ----------

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

    @admin.action(description="Query status from M-Pesa", permissions=["query_status"])
    def query_status_selected(self, request, queryset: QuerySet) -> HttpResponse:
        return confirmation_page(
            self,
            request,
            title="Query status from M-Pesa",
            question="Ask M-Pesa for the current status of these transactions?",
            rows=[(t, t.get_status_display()) for t in queryset],
            action_url=reverse("admin:payments_transaction_query_status"),
            button="Yes, ask M-Pesa",
        )

    @admin.action(description="Export selected as CSV", permissions=["export"])
    def export_selected(self, request, queryset: QuerySet) -> HttpResponse:
        return confirmation_page(
            self,
            request,
            title="Export as CSV",
            question="Download these transactions as a CSV file?",
            rows=[(t, f"KES {t.amount}") for t in queryset],
            action_url=reverse("admin:payments_transaction_export"),
            button="Download CSV",
        )

    # -- custom views --------------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("refund/", view(self.refund_bulk_view), name="payments_transaction_refund_bulk"),
            path("<uuid:pk>/refund/", view(self.refund_view), name="payments_transaction_refund"),
            path(
                "query-status/",
                view(self.query_status_view),
                name="payments_transaction_query_status",
            ),
            path("export/", view(self.export_view), name="payments_transaction_export"),
            path("payout/", view(self.payout_view), name="payments_transaction_payout"),
            path("balance/", view(self.balance_view), name="payments_transaction_balance"),
        ]
        return custom + super().get_urls()

    def _selected(self, request) -> QuerySet:
        if request.method != "POST":
            raise PermissionDenied
        return self.model.objects.filter(pk__in=_uuids(request.POST.getlist("ids")))

    def _back(self) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:payments_transaction_changelist"))

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

    def query_status_view(self, request) -> HttpResponse:
        require(request, "query_status")
        selected = self._selected(request)
        if not first_submission(request):
            return self._back()
        done = failed = 0
        for transaction in selected:
            try:
                refreshed, inquiry = transaction_refresh(transaction=transaction, user=request.user)
                outcome = f"asked ({inquiry.status})" if inquiry else refreshed.status
                done += 1
            except (PaymentsError, DarajaError) as exc:
                outcome = f"failed: {getattr(exc, 'message', exc)}"
                failed += 1
            audit_record(
                actor=request.user, action="status_query", transaction=transaction, outcome=outcome
            )
        self._report(request, done, failed, "status query", "sent")
        return self._back()

    def export_view(self, request) -> HttpResponse:
        require(request, "export_transactions")
        rows = list(self._selected(request).order_by("created_at"))
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="mpesa-transactions-{stamp}.csv"'
        writer = csv.writer(response)
        writer.writerow(CSV_FIELDS)
        for row in rows:
            writer.writerow([_csv_value(getattr(row, name)) for name in CSV_FIELDS])
        audit_record(
            actor=request.user,
            action="export",
            outcome=f"{len(rows)} transactions exported",
            details={"rows": [{"id": str(t.pk), "receipt": t.mpesa_receipt_number} for t in rows]},
        )
        return response

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

    def _page(self, request, template: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(
            request,
            template,
            {**self.admin_site.each_context(request), "opts": self.model._meta, **context},
        )

    def _report(self, request, done: int, failed: int, what: str, verb: str) -> None:
        if done:
            self.message_user(request, f"{done} {what}(s) {verb}.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"{failed} {what}(s) failed.", messages.ERROR)


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


class NeedsAPersonFilter(admin.SimpleListFilter):
    """Callbacks that failed, matched nothing, were refused or flagged their transaction."""

    title = "needs a person"
    parameter_name = "needs_person"

    def lookups(self, request, model_admin):
        return [("yes", "Yes")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return callback_events_needing_a_person(queryset)
        return queryset


@admin.register(CallbackEvent)
class CallbackEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("received_at", "kind", "outcome", "transaction", "source_ip")
    list_filter = (NeedsAPersonFilter, "kind", "outcome")
    search_fields = ("token", "transaction__mpesa_receipt_number", "body")
    date_hierarchy = "received_at"
    actions = ("reprocess_selected",)
    readonly_fields = (
        "kind",
        "outcome",
        "received_at",
        "processed_at",
        "source_ip",
        "transaction",
        "inquiry",
        "pretty_headers",
        "pretty_body",
        "error",
    )
    exclude = ("token", "headers", "body")

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("payments.change_callbackevent")

    @admin.display(description="Body as received")
    def pretty_body(self, obj: CallbackEvent) -> str:
        if obj.raw_body is not None:
            return format_html(
                "<p>Not UTF-8 text, or it holds NUL bytes: shown with \\xNN escapes. The exact "
                "bytes are stored ({} bytes).</p><pre style='white-space:pre-wrap'>{}</pre>",
                len(obj.raw_body),
                obj.body,
            )
        try:
            # Bounded: a body nested a thousand deep is shown as it came, not a RecursionError.
            text = json.dumps(loads_bounded(obj.body), indent=2, ensure_ascii=False)
            # A lone surrogate ("\udfff" in the JSON) cannot be sent as UTF-8: shown escaped.
            text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
        except ValueError:
            text = obj.body
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    @admin.display(description="Headers")
    def pretty_headers(self, obj: CallbackEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2))

    @admin.action(description="Re-process", permissions=["reprocess"])
    def reprocess_selected(self, request, queryset: QuerySet) -> HttpResponse:
        return confirmation_page(
            self,
            request,
            title="Re-process callbacks",
            question="Process these stored callbacks again? Settled ones stay as they are.",
            rows=[(e, f"{e.get_kind_display()}: {e.outcome}") for e in queryset],
            action_url=reverse("admin:payments_callbackevent_reprocess"),
            button="Yes, re-process",
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("reprocess/", view(self.reprocess_view), name="payments_callbackevent_reprocess"),
            *super().get_urls(),
        ]

    def reprocess_view(self, request) -> HttpResponse:
        require(request, "change_callbackevent")
        if request.method != "POST":
            raise PermissionDenied
        counts: dict[str, int] = {}
        # ASCII only: Django reads other scripts' digits as numbers, naming other events.
        ids = [v for v in request.POST.getlist("ids") if v.isascii() and v.isdigit()]
        for event in CallbackEvent.objects.filter(pk__in=ids):
            result = callback_event_process(event=event)
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
            audit_record(
                actor=request.user,
                action="reprocess_callback",
                transaction=result.transaction,
                outcome=result.outcome,
                details={"callback_event": result.pk},
            )
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        self.message_user(request, f"Re-processed: {summary or 'nothing'}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:payments_callbackevent_changelist"))


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "transaction", "amount", "outcome")
    list_filter = ("action",)
    search_fields = ("actor__username", "transaction__mpesa_receipt_number", "outcome")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditRecord._meta.fields]


@admin.register(BalanceSnapshot)
class BalanceSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("reported_at", "shortcode", "account", "available", "current", "currency")
    list_filter = ("account", "shortcode")
    readonly_fields = [f.name for f in BalanceSnapshot._meta.fields]


def _uuids(values: list[str]) -> list[uuid.UUID]:
    """The well-formed ids among posted values; anything else selects nothing."""
    valid = []
    for value in values:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue
    return valid


# A spreadsheet runs a cell starting with one of these as a formula; customers type some of
# our text (the C2B account reference), so it must never reach a finance laptop as one.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value
