"""Closing the day: import the M-Pesa org portal statement, read the report of each line against
the ledger, export it, book what the ledger missed and settle what a person looked into."""

from __future__ import annotations

import re
import uuid

from django.contrib import admin, messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone

from payments.admin.common import (
    AdminPagesMixin,
    ReadOnlyAdminMixin,
    confirmation_page,
    csv_download,
    first_submission,
    require,
)
from payments.admin.forms import StatementResolveForm, StatementUploadForm
from payments.enums import STATEMENT_MISMATCHES
from payments.enums import StatementCategory as Category
from payments.exceptions import PaymentsError
from payments.models import StatementImport, StatementLine
from payments.selectors import statement_mismatches_open
from payments.services.audit import audit_record
from payments.services.c2b import C2BBooking
from payments.services.statements import (
    statement_import,
    statement_line_book,
    statement_line_resolve,
    statement_summary,
)

# The report lists this many lines of a category; the CSV export has them all.
LINES_SHOWN = 500
EXPORT_FIELDS = (
    "category",
    "receipt",
    "completed_at",
    "initiated_at",
    "details",
    "status",
    "reason_type",
    "other_party",
    "account_number",
    "paid_in",
    "withdrawn",
    "balance",
    "ledger_amount",
    "transaction_id",
    "note",
    "resolved_at",
    "resolution",
)


class NeedsAPersonFilter(admin.SimpleListFilter):
    title = "needs a person"
    parameter_name = "needs_a_person"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"),)

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=statement_mismatches_open().values("pk"))
        return queryset


@admin.register(StatementLine)
class StatementLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every line of every statement; ``?needs_a_person=yes`` lists the open mismatches."""

    list_display = (
        "receipt",
        "category",
        "amount",
        "ledger_amount",
        "completed_at",
        "statement",
        "resolution",
    )
    list_filter = (NeedsAPersonFilter, "category")
    search_fields = ("receipt", "account_number")
    list_select_related = ("statement",)
    readonly_fields = [f.name for f in StatementLine._meta.fields]


@admin.register(StatementImport)
class StatementImportAdmin(AdminPagesMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "file_name",
        "shortcode",
        "period_start",
        "period_end",
        "line_count",
        "imported_by",
    )
    list_display_links = ("file_name",)
    list_select_related = ("imported_by",)
    change_list_template = "admin/payments/statementimport/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        name = "payments_statementimport_"
        return [
            path("upload/", view(self.upload_view), name=name + "upload"),
            path("<int:pk>/report/", view(self.report_view), name=name + "report"),
            path("<int:pk>/export/", view(self.export_view), name=name + "export"),
            path("line/<int:pk>/book/", view(self.book_view), name=name + "book"),
            path("line/<int:pk>/resolve/", view(self.resolve_view), name=name + "resolve"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # An import is read as its report.
        if not re.fullmatch(r"[0-9]{1,18}", str(object_id)):
            raise Http404
        return HttpResponseRedirect(_report_url(int(object_id)))

    def upload_view(self, request) -> HttpResponse:
        require(request, "import_statement")
        form = StatementUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = statement_import(
                    data=upload.read(), file_name=upload.name or "", user=request.user
                )
            except PaymentsError as exc:
                form.add_error("file", exc.message)
            else:
                statement = result.statement
                if result.created:
                    messages.success(request, f"Imported {statement.line_count} lines.")
                else:
                    when = timezone.localtime(statement.created_at).strftime("%Y-%m-%d %H:%M")
                    messages.warning(
                        request, f"This file was imported on {when}: nothing was changed."
                    )
                return HttpResponseRedirect(_report_url(statement.pk))
        response = self._page(
            request,
            "admin/payments/statement_upload.html",
            title="Import an M-Pesa statement",
            form=form,
        )
        if request.method == "POST":
            response.status_code = 400  # the form, with what is wrong with the file
        return response

    def report_view(self, request, pk: int) -> HttpResponse:
        require(request, "view_statementimport")
        statement = get_object_or_404(StatementImport.objects.select_related("imported_by"), pk=pk)
        category = request.GET.get("category", "")
        if category not in Category.values:
            category = ""
        shown = statement.lines.select_related("transaction", "resolved_by")
        shown = (
            shown.filter(category=category)
            if category
            else shown.filter(category__in=STATEMENT_MISMATCHES)
        )
        open_ids = set(
            statement_mismatches_open().filter(statement=statement).values_list("pk", flat=True)
        )
        lines = list(shown.order_by("category", "completed_at", "pk")[:LINES_SHOWN])
        return self._page(
            request,
            "admin/payments/statement_report.html",
            title=f"Statement {statement.file_name}",
            statement=statement,
            summary=statement_summary(statement.lines.only("category", "amount")),
            category=category,
            category_label=Category(category).label if category else "",
            lines=[(line, line.pk in open_ids) for line in lines],
            more=shown.count() > LINES_SHOWN,
            open_count=len(open_ids),
            mismatches=[str(c) for c in STATEMENT_MISMATCHES],
            can_book=request.user.has_perm("payments.book_statement_line"),
            can_export=request.user.has_perm("payments.export_transactions"),
        )

    def export_view(self, request, pk: int) -> HttpResponse:
        require(request, "view_statementimport")
        require(request, "export_transactions")
        if request.method != "POST":
            return HttpResponseRedirect(_report_url(pk))
        statement = get_object_or_404(StatementImport, pk=pk)
        lines = statement.lines.order_by("category", "completed_at", "pk")
        response, count = csv_download(
            f"mpesa-statement-{pk}-report.csv", EXPORT_FIELDS, lines.iterator()
        )
        audit_record(
            actor=request.user,
            action="statement_export",
            outcome=f"report of statement {pk} exported ({count} lines)",
            details={"statement": pk, "file_name": statement.file_name},
        )
        return response

    def book_view(self, request, pk: int) -> HttpResponse:
        require(request, "book_statement_line")
        line = get_object_or_404(StatementLine.objects.select_related("statement"), pk=pk)
        back = HttpResponseRedirect(_report_url(line.statement_id, Category.MISSING_FROM_LEDGER))
        if request.method != "POST":
            if not line.waiting_to_book:
                messages.warning(request, f"{line.receipt} is not waiting to be booked.")
                return back
            amount = f"KES {line.paid_in:,.2f}"
            return confirmation_page(
                self,
                request,
                title="Book a payment missing from the ledger",
                question=(
                    f"Book {amount} paid with receipt {line.receipt} as a C2B payment? It is "
                    "booked as the confirmation M-Pesa never delivered would have been."
                ),
                rows=[(line, _described(line))],
                action_url=request.path,
                button=f"Yes, book {amount}",
            )
        if not first_submission(request):
            return back
        try:
            transaction, booking = statement_line_book(line=line, user=request.user)
        except PaymentsError as exc:
            messages.error(request, f"{line.receipt}: nothing was booked. {exc.message}")
            return back
        level = messages.WARNING if booking == C2BBooking.DUPLICATE else messages.SUCCESS
        messages.add_message(
            request,
            level,
            f"{line.receipt}: {transaction.get_transaction_type_display()} "
            f"of KES {transaction.amount:,} ({booking.value.replace('_', ' ')}).",
        )
        return back

    def resolve_view(self, request, pk: int) -> HttpResponse:
        require(request, "book_statement_line")
        line = get_object_or_404(StatementLine.objects.select_related("statement"), pk=pk)
        back = HttpResponseRedirect(_report_url(line.statement_id, line.category))
        form = StatementResolveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            if not first_submission(request):
                return back
            try:
                statement_line_resolve(line=line, user=request.user, note=form.cleaned_data["note"])
            except PaymentsError as exc:
                messages.error(request, f"{line.receipt}: {exc.message}")
            else:
                messages.success(request, f"{line.receipt}: resolved.")
            return back
        response = self._page(
            request,
            "admin/payments/statement_resolve.html",
            title=f"Resolve {line.receipt}",
            line=line,
            detail=_described(line),
            form=form,
            nonce=uuid.uuid4().hex,
            report_url=_report_url(line.statement_id, line.category),
        )
        if request.method == "POST":
            response.status_code = 400
        return response


def _report_url(pk: int, category: str = "") -> str:
    url = reverse("admin:payments_statementimport_report", args=[pk])
    return f"{url}?category={category}" if category else url


def _described(line: StatementLine) -> str:
    parts = [line.get_category_display()]
    if line.completed_at:
        parts.append(timezone.localtime(line.completed_at).strftime("%Y-%m-%d %H:%M:%S"))
    if line.account_number:
        parts.append(f"account {line.account_number}")
    if line.other_party:
        parts.append(f"from {line.other_party}")
    if line.note:
        parts.append(line.note)
    return ", ".join(parts)
