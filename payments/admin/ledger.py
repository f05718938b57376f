"""The ledger: a read-only list of every transaction with search, status queries and CSV export;
the audit trail and balance snapshots beside it."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from payments.admin.common import (
    AdminPagesMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    confirmation_page,
    csv_download,
    first_submission,
    require,
)
from payments.admin.ledger_list import LedgerListMixin, LinkedTypeFilter
from payments.admin.payouts import MoneyOutViewsMixin
from payments.daraja.errors import DarajaError
from payments.daraja.phone import mask_phone_number
from payments.enums import TransactionStatus
from payments.exceptions import PaymentsError
from payments.models import (
    AuditRecord,
    BalanceSnapshot,
    CallbackEvent,
    Transaction,
)
from payments.services.audit import audit_record
from payments.services.inquiries import transaction_refresh

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


@admin.register(Transaction)
class TransactionAdmin(
    LedgerListMixin, MoneyOutViewsMixin, AdminPagesMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    # Narrow columns, one line a row: beside the filter panel the list fits a 1280-pixel screen
    # (tests/simulator/test_ledger_layout_browser.py).
    list_display = (
        "created",
        "transaction_type",
        "status_badge",
        "masked_phone",
        "amount",
        "receipt",
        "reference",
        "review",
    )
    list_filter = (
        "status",
        "transaction_type",
        "created_at",
        "needs_review",
        ("for_content_type", LinkedTypeFilter),
    )
    list_per_page = 50
    actions = ("refund_selected", "query_status_selected", "export_selected")
    inlines = (CallbackEventInline, ReversalInline)
    change_list_template = "admin/payments/transaction/change_list.html"
    change_form_template = "admin/payments/transaction/change_form.html"

    # -- a read-only ledger (ReadOnlyAdminMixin) ------------------------------------------------

    # The callback token is a credential: whoever knows it can post results for the row. The
    # link to the host's object is shown as one field, for_object_link.
    exclude = ("callback_token", "for_content_type", "for_object_id")

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields if f.name not in self.exclude]
        return [*fields, "for_object_link"]

    @admin.display(description="For")
    def for_object_link(self, obj: Transaction) -> str:
        """The host's object this payment is for, linked to its admin page when it has one
        (which checks the viewer's permissions itself)."""
        if obj.for_content_type_id is None:
            return "-"
        target = obj.for_object
        if target is None:
            return f"{obj.for_content_type.name} {obj.for_object_id} (deleted)"
        opts = target._meta
        if self.admin_site.is_registered(type(target)):
            try:
                url = reverse(
                    f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                    args=[target.pk],
                )
            except NoReverseMatch:
                url = ""
            if url:
                return format_html('<a href="{}">{}</a>', url, target)
        return str(target)

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

    # -- permissions of the actions ------------------------------------------------------------

    def has_query_status_permission(self, request) -> bool:
        return request.user.has_perm("payments.query_status")

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("payments.export_transactions")

    # -- actions: each shows a confirmation page posting to a view that checks again ----------

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

    # -- custom views (the money ones come from MoneyOutViewsMixin) -----------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path(
                "query-status/",
                view(self.query_status_view),
                name="payments_transaction_query_status",
            ),
            path("export/", view(self.export_view), name="payments_transaction_export"),
        ]
        return self.money_out_urls() + custom + super().get_urls()

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
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response, _ = csv_download(f"mpesa-transactions-{stamp}.csv", CSV_FIELDS, rows)
        audit_record(
            actor=request.user,
            action="export",
            outcome=f"{len(rows)} transactions exported",
            details={"rows": [{"id": str(t.pk), "receipt": t.mpesa_receipt_number} for t in rows]},
        )
        return response


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
