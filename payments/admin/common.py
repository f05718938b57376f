"""What every back-office page shares: permission checks, confirmation pages with a one-time
nonce, read-only records, and the small page helpers of the money views.

Every view that moves money or changes a status checks its permission itself (not only by hiding
a button), asks for confirmation, and leaves an AuditRecord.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from payments.exceptions import PaymentsError
from payments.services.idempotency import (
    idempotency_key_claim,
    idempotency_key_complete,
    request_fingerprint,
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


class AdminPagesMixin:
    """Page helpers of a ModelAdmin's custom views."""

    def _selected(self, request) -> QuerySet:
        if request.method != "POST":
            raise PermissionDenied
        return self.model.objects.filter(pk__in=selected_uuids(request.POST.getlist("ids")))

    def _back(self) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:payments_transaction_changelist"))

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


def selected_uuids(values: list[str]) -> list[uuid.UUID]:
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


def csv_download(
    file_name: str, fields: Sequence[str], rows: Iterable[Any]
) -> tuple[HttpResponse, int]:
    """A CSV attachment: a header of ``fields``, then each row's attributes of those names as
    cells a spreadsheet shows and never runs. Returns the response and how many rows it holds."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    writer = csv.writer(response)
    writer.writerow(fields)
    count = 0
    for row in rows:
        writer.writerow([spreadsheet_cell(getattr(row, name)) for name in fields])
        count += 1
    return response, count


def spreadsheet_cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet shows and never runs."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value
