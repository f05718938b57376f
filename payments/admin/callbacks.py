"""The callback inbox: everything Safaricom sent, as it came, and a way to process it again."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from payments.admin.common import ReadOnlyAdminMixin, confirmation_page, require
from payments.daraja.jsontext import loads_bounded
from payments.models import (
    CallbackEvent,
)
from payments.selectors import (
    callback_events_needing_a_person,
)
from payments.services.audit import audit_record
from payments.services.callbacks import callback_event_process


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
