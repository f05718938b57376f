"""Filters and search for the transaction history."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError
from rest_framework.fields import CharField
from rest_framework.filters import SearchFilter

from payments.daraja.errors import InvalidPhoneNumberError
from payments.daraja.phone import normalize_phone_number
from payments.enums import TransactionStatus, TransactionType
from payments.models import Transaction
from payments.selectors import transaction_search


def _normalized_or_same(value: str) -> str:
    try:
        return normalize_phone_number(value)
    except InvalidPhoneNumberError:
        return value.strip()


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, held in UTC before any query: PostgreSQL refuses UTC offsets
    beyond ±15:59, which ISO 8601 allows, and a time at the calendar's edge (year 1 at +05:00)
    overflows when a database converts it."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("is out of range", code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class TransactionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=TransactionStatus.choices)
    transaction_type = django_filters.ChoiceFilter(choices=TransactionType.choices)
    phone_number = django_filters.CharFilter(
        method="filter_phone_number", help_text="Any accepted form: 07…, 2547…, +254…"
    )
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")
    for_object_type = django_filters.CharFilter(
        method="filter_for_object_type",
        help_text='What the host linked the payment to, as "app_label.model" (e.g. "shop.order").',
    )
    for_object_id = django_filters.CharFilter(
        field_name="for_object_id", help_text="The primary key of that object."
    )

    class Meta:
        model = Transaction
        fields = (
            "status",
            "transaction_type",
            "phone_number",
            "created_after",
            "created_before",
            "for_object_type",
            "for_object_id",
        )

    def filter_for_object_type(self, queryset, name, value):
        # Any text: a type that names no model matches nothing, as an unknown id does.
        app_label, _, model = value.strip().lower().partition(".")
        return queryset.filter(for_content_type__app_label=app_label, for_content_type__model=model)

    def filter_phone_number(self, queryset, name, value):
        return queryset.filter(phone_number=_normalized_or_same(value))


class TransactionSearchFilter(SearchFilter):
    """``?search=``: one term, matched whole or by its start as selectors.transaction_search
    says, never inside a value (no index serves that on a large ledger)."""

    search_description = (
        "A receipt number (whole, or its first 4 characters or more), a phone number in any "
        "accepted form (07…, 2547…, +254…), an account reference (whole), a CheckoutRequestID "
        "or a conversation id (whole). Any case; matches never start mid-value."
    )

    def filter_queryset(self, request, queryset, view):
        value = request.query_params.get(self.search_param, "")
        try:
            # DRF's own field refuses a NUL; our 400s name the parameter.
            term = CharField(trim_whitespace=False, allow_blank=True).run_validation(value)
        except ValidationError as exc:
            raise ValidationError({self.search_param: exc.detail}) from None
        return transaction_search(queryset, term)
