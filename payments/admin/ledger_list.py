"""The ledger's list page at any size: searches and filters served by indexes, a date drilldown
and page counts that never read the whole ledger.

At 300,000 rows Django's defaults cost seconds a page: "contains" searches, a date hierarchy
that runs DISTINCT DATE_TRUNC over the listed rows (and MIN/MAX over a search), a "For" filter
that reads every row for its choices, and a COUNT(*) of everything listed.
"""

from __future__ import annotations

import calendar
import datetime

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import capfirst

from payments.models import Transaction
from payments.pagination import LedgerPaginator
from payments.selectors import transaction_search

REFERENCE_SHOWN = 12  # characters of an account reference shown in the list


class LinkedTypeFilter(admin.RelatedFieldListFilter):
    """The kinds of the host's objects payments are linked to ("For"), each found by one probe
    of the (for_content_type, for_object_id) index instead of a DISTINCT over the ledger."""

    def field_choices(self, field, request, model_admin):
        linked = ContentType.objects.filter(
            Exists(Transaction.objects.filter(for_content_type=OuterRef("pk")))
        ).values("pk")
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, limit_choices_to={"pk__in": linked}, ordering=ordering
        )


class LedgerListMixin:
    """The list page of TransactionAdmin."""

    search_help_text = (
        "A receipt (whole, or its first 4 characters or more), a phone number in any form (07…, "
        "2547…, +254…), an account reference, a CheckoutRequestID or a conversation id (whole). "
        "Any case; never a match in the middle of a value."
    )
    # Any one field shows the search box; what it matches is selectors.transaction_search's
    # (get_search_results), said once there.
    search_fields = ("mpesa_receipt_number",)
    date_hierarchy = "created_at"  # drawn by date_drilldown, not by Django's tag
    paginator = LedgerPaginator
    show_full_result_count = False  # "(Show all)" instead of a second COUNT(*) of everything
    show_facets = admin.ShowFacets.NEVER  # a COUNT per filter choice over the whole ledger
    list_select_related = False  # no foreign key among the columns

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: Transaction) -> str:
        return timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M")

    # Receipt, reference and review are not sortable: sorting the whole ledger by them reads
    # every row (0.4 s at 300k) for an order no one reads; a search or a filter finds them.
    @admin.display(description="Receipt")
    def receipt(self, obj: Transaction) -> str:
        return obj.mpesa_receipt_number

    @admin.display(description="Reference")
    def reference(self, obj: Transaction) -> str:
        # Up to 20 characters a customer may have typed: the cell shows the start, the
        # tooltip all of it.
        value = obj.account_reference
        if len(value) <= REFERENCE_SHOWN:
            return value
        return format_html('<span title="{}">{}…</span>', value, value[: REFERENCE_SHOWN - 1])

    @admin.display(description="Review", boolean=True)
    def review(self, obj: Transaction) -> bool:
        return obj.needs_review

    def get_search_results(self, request, queryset, search_term):
        # The changelist passes the queryset already narrowed by the filters: they stay.
        return transaction_search(queryset, search_term), False


def date_drilldown(cl) -> dict:
    """Django's date drilldown (years, a year's months, a month's days) for the ledger without
    its queries over the listed rows: the ledger's first and last ``created_at`` (two index
    probes) bound the links, and every month and day between them is offered, with rows or
    without, so that a search or a filter costs the drilldown nothing."""
    field = cl.date_hierarchy
    bounds = cl.model._default_manager.aggregate(first=Min(field), last=Max(field))
    if bounds["first"] is None:
        return {"show": False}
    first = timezone.localtime(bounds["first"]).date()
    last = timezone.localtime(bounds["last"]).date()
    year, month, day = (cl.params.get(f"{field}__{part}") for part in ("year", "month", "day"))
    names = {"year": f"{field}__year", "month": f"{field}__month", "day": f"{field}__day"}

    def link(**parts) -> str:
        return cl.get_query_string({names[k]: v for k, v in parts.items()}, [f"{field}__"])

    if not year and first.year == last.year:
        year = first.year  # one year on the ledger: start at its months, as Django does
    if year and month and day:
        chosen = datetime.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link(year=year, month=month),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    if year and month:
        year, month = int(year), int(month)
        days = (
            datetime.date(year, month, n) for n in range(1, calendar.monthrange(year, month)[1] + 1)
        )
        return {
            "show": True,
            "back": {"link": link(year=year), "title": str(year)},
            "choices": [
                {
                    "link": link(year=year, month=month, day=d.day),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in days
                if first <= d <= last
            ],
        }
    if year:
        year = int(year)
        months = (datetime.date(year, n, 1) for n in range(1, 13))
        return {
            "show": True,
            "back": {"link": link(), "title": "All dates"} if first.year != last.year else None,
            "choices": [
                {
                    "link": link(year=year, month=m.month),
                    "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                }
                for m in months
                if first.replace(day=1) <= m <= last
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link(year=y), "title": str(y)} for y in range(first.year, last.year + 1)
        ],
    }
