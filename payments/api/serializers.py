"""Request and response shapes of the API. No service calls here."""

from __future__ import annotations

import copy
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.conf import payments_settings
from payments.daraja.phone import INVALID_PHONE_MESSAGE, PHONE_NUMBER_PATTERN
from payments.enums import B2CCommand
from payments.models import (
    BalanceSnapshot,
    DarajaInquiry,
    PayoutRequest,
    RefundRequest,
    Transaction,
)
from payments.selectors import for_object_label, shortcode_label
from payments.services.checkout import DESCRIPTION_MAX
from payments.services.common import (
    AMOUNT_MAX,
    SHORTCODE_PATTERN,
    SHORTCODE_RULE,
    whole_amount_rule,
)
from payments.services.stk_push import ACCOUNT_REFERENCE_PATTERN, ACCOUNT_REFERENCE_RULE

# Metadata keys safe to show the owner of a transaction: no callback URLs, no raw bodies.
SAFE_METADATA_KEYS = ("customer_message",)


class Text(serializers.CharField):
    """A JSON string, checked as sent: DRF's CharField would also take 42 (as "42") and strip
    spaces before counting max_length, neither of which the OpenAPI schema can say. The
    services strip what they store. NUL and lone surrogates are refused (400) by CharField."""

    def __init__(self, *, pattern: str | None = None, rule: str = "", **kwargs: Any) -> None:
        kwargs["trim_whitespace"] = False
        if pattern:
            # RegexValidator searches: anchor with \A and \Z (drf-spectacular writes ^ and $).
            kwargs["validators"] = [
                RegexValidator(pattern, message=rule),
                *kwargs.get("validators", ()),
            ]
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class WholeShillings(serializers.IntegerField):
    """A JSON integer of shillings within ``limits`` ("STK" or "B2C": PAYMENTS
    <limits>_MIN_AMOUNT to <limits>_MAX_AMOUNT, read each time a serializer is made); DRF's
    IntegerField would also take "10", 10.0 and true."""

    default_error_messages = {"invalid": "must be a whole number of shillings (a JSON integer)"}

    def __init__(self, *, limits: str | None = None, **kwargs: Any) -> None:
        if limits:
            minimum = getattr(payments_settings, f"{limits}_MIN_AMOUNT")
            maximum = getattr(payments_settings, f"{limits}_MAX_AMOUNT")
            rule = whole_amount_rule(minimum, maximum)
            kwargs.update(
                min_value=minimum,
                max_value=maximum,
                error_messages={"min_value": rule, "max_value": rule},
                help_text=f"Whole shillings, {minimum} to {maximum}.",
            )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def phone_number_field() -> Text:
    return Text(
        max_length=32,
        pattern=PHONE_NUMBER_PATTERN.pattern,
        rule=INVALID_PHONE_MESSAGE,
        help_text="Kenyan mobile number: 07…, 01…, 2547…, 2541… or +254…, spaces, dashes and "
        "brackets allowed.",
    )


def shortcode_field(help_text: str) -> Text:
    return Text(
        max_length=7,
        required=False,
        allow_blank=True,
        default="",
        pattern=rf"\A{SHORTCODE_PATTERN.pattern}\Z",
        rule=SHORTCODE_RULE,
        help_text=help_text,
    )


def account_reference_field() -> Text:
    return Text(
        max_length=64,
        pattern=rf"\A\s*{ACCOUNT_REFERENCE_PATTERN.pattern}\s*\Z",
        rule=f"must be {ACCOUNT_REFERENCE_RULE}",
        help_text=f"Shown in the M-Pesa prompt: {ACCOUNT_REFERENCE_RULE}.",
    )


# What the services ask of remarks once stripped: 2 to 100 characters.
REMARKS_PATTERN = r"\S[\s\S]*\S"


class StkPushRequestSerializer(serializers.Serializer):
    phone_number = phone_number_field()
    amount = WholeShillings(limits="STK")
    account_reference = account_reference_field()
    transaction_desc = Text(max_length=100, required=False, allow_blank=True, default="")


class ForObjectSerializer(serializers.Serializer):
    type = serializers.CharField(help_text='The host\'s model, "app_label.model": "shop.order".')
    id = serializers.CharField(help_text="Its primary key, as text.")


class FieldsBuiltOnce:
    """A ModelSerializer whose fields are built from the model once per class, then copied for
    each instance: building them took 1.4 of the 1.8 ms of a status poll's answer, and DRF's
    deep copy of them half as much again. A shallow copy is enough for fields that keep no
    state of their own once bound (DRF binds each copy to its serializer); a nested
    serializer among them is deep-copied, as DRF does."""

    def get_fields(self) -> dict[str, serializers.Field]:
        built = type(self).__dict__.get("_fields_built_once")
        if built is None:
            built = super().get_fields()  # type: ignore[misc]
            type(self)._fields_built_once = built
        return {
            name: copy.deepcopy(field)
            if isinstance(field, serializers.BaseSerializer)
            else copy.copy(field)
            for name, field in built.items()
        }


class TransactionSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    message = serializers.CharField(
        source="customer_message", read_only=True, help_text="One sentence for the customer."
    )
    mpesa_receipt_number = serializers.CharField(
        source="payment_receipt",
        read_only=True,
        help_text="M-Pesa's receipt once paid (also when the payment is booked as `booked_as`).",
    )
    metadata = serializers.SerializerMethodField()
    for_object = serializers.SerializerMethodField(
        help_text="What the host project linked this payment to (its order, say), or null."
    )

    class Meta:
        model = Transaction
        fields = (
            "id",
            "transaction_type",
            "status",
            "message",
            "mpesa_receipt_number",
            "phone_number",
            "amount",
            "account_reference",
            "transaction_desc",
            "merchant_request_id",
            "checkout_request_id",
            "result_code",
            "result_desc",
            "transaction_date",
            "created_at",
            "metadata",
            "reversed_amount",
            "original",
            "booked_as",
            "for_object",
        )
        read_only_fields = fields

    @extend_schema_field(ForObjectSerializer(allow_null=True))
    def get_for_object(self, obj: Transaction) -> dict[str, str] | None:
        if obj.for_content_type_id is None:
            return None
        return {"type": for_object_label(obj.for_content_type_id), "id": obj.for_object_id}

    def get_metadata(self, obj: Transaction) -> dict[str, Any]:
        return {key: obj.metadata[key] for key in SAFE_METADATA_KEYS if key in obj.metadata}


class StkPushResultSerializer(TransactionSerializer):
    customer_message = serializers.SerializerMethodField()

    class Meta(TransactionSerializer.Meta):
        fields = (*TransactionSerializer.Meta.fields, "customer_message")
        read_only_fields = fields

    def get_customer_message(self, obj: Transaction) -> str:
        return obj.metadata.get("customer_message") or obj.customer_message


class ErrorSerializer(serializers.Serializer):
    """Every error the API answers has this shape."""

    code = serializers.CharField(help_text="Stable machine-readable code.")
    detail = serializers.CharField(help_text="A sentence for a developer or a user.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For code 'invalid': the messages of each offending field, by field name.",
    )


class StkPushFailedSerializer(ErrorSerializer):
    transaction = StkPushResultSerializer(help_text="The transaction, stored as failed.")


class B2CRequestSerializer(serializers.Serializer):
    phone_number = phone_number_field()
    amount = WholeShillings(limits="B2C")
    command_id = serializers.ChoiceField(
        choices=B2CCommand.choices, default=B2CCommand.BUSINESS_PAYMENT
    )
    remarks = Text(
        max_length=100,
        pattern=REMARKS_PATTERN,
        rule="must be 2 to 100 characters",
        help_text="2 to 100 characters.",
    )
    occasion = Text(max_length=100, required=False, allow_blank=True, default="")


class ReversalRequestSerializer(serializers.Serializer):
    transaction = Text(
        max_length=64,
        pattern=r"\S",
        rule="give our transaction id or the M-Pesa receipt",
        help_text="Our transaction id, or the payment's M-Pesa receipt number.",
    )
    amount = WholeShillings(
        min_value=1,
        max_value=AMOUNT_MAX,
        required=False,
        allow_null=True,
        default=None,
        help_text="Default: all not yet refunded.",
    )
    remarks = Text(
        max_length=100,
        required=False,
        default="Refund",
        pattern=REMARKS_PATTERN,
        rule="must be 2 to 100 characters",
    )


class BalanceRequestSerializer(serializers.Serializer):
    shortcode = shortcode_field(
        "Ask about this shortcode only. Default: the PayBill and the payout shortcode."
    )


class RegisterUrlsSerializer(serializers.Serializer):
    api_version = serializers.ChoiceField(choices=("v1", "v2"), default="v2")
    response_type = serializers.ChoiceField(choices=("Completed", "Cancelled"), default="Completed")
    shortcode = shortcode_field("Register for this shortcode. Default: the PayBill.")


class InquirySerializer(serializers.ModelSerializer):
    transaction = serializers.UUIDField(source="transaction_id", read_only=True, allow_null=True)

    class Meta:
        model = DarajaInquiry
        fields = (
            "id",
            "kind",
            "status",
            "transaction",
            "conversation_id",
            "originator_conversation_id",
            "result_code",
            "result_desc",
            "created_at",
            "completed_at",
        )
        read_only_fields = fields


class BalanceInquirySerializer(InquirySerializer):
    shortcode = serializers.SerializerMethodField()
    label = serializers.SerializerMethodField(help_text='e.g. "PayBill 174379".')

    class Meta(InquirySerializer.Meta):
        fields = ("label", "shortcode", *InquirySerializer.Meta.fields)
        read_only_fields = fields

    def get_shortcode(self, inquiry: DarajaInquiry) -> str:
        return str(inquiry.metadata.get("shortcode", ""))

    def get_label(self, inquiry: DarajaInquiry) -> str:
        return shortcode_label(self.get_shortcode(inquiry))


class BalanceRefreshSerializer(serializers.Serializer):
    inquiries = BalanceInquirySerializer(many=True, help_text="One inquiry per shortcode asked.")


class BalanceSnapshotSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField(help_text='e.g. "B2C payouts 600992".')

    class Meta:
        model = BalanceSnapshot
        fields = (
            "label",
            "shortcode",
            "account",
            "currency",
            "current",
            "available",
            "reserved",
            "uncleared",
            "reported_at",
        )
        read_only_fields = fields

    def get_label(self, snapshot: BalanceSnapshot) -> str:
        return shortcode_label(snapshot.shortcode)


class RegisterUrlsResultSerializer(serializers.Serializer):
    response_code = serializers.CharField()
    response_description = serializers.CharField()
    originator_conversation_id = serializers.CharField(allow_null=True)


class TransactionRefreshSerializer(serializers.Serializer):
    transaction = TransactionSerializer()
    inquiry = InquirySerializer(allow_null=True)


class CheckoutLinkRequestSerializer(serializers.Serializer):
    amount = WholeShillings(limits="STK")
    account_reference = account_reference_field()
    description = Text(max_length=DESCRIPTION_MAX, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Default: in 24 hours."
    )


class CheckoutLinkSerializer(serializers.Serializer):
    url = serializers.URLField()
    token = serializers.CharField()
    amount = serializers.IntegerField()
    account_reference = serializers.CharField()
    description = serializers.CharField()
    expires_at = serializers.DateTimeField()


class CheckoutPayRequestSerializer(serializers.Serializer):
    phone_number = phone_number_field()


class CheckoutStatusSerializer(serializers.ModelSerializer):
    """What the payer's page may see: the status and the receipt, nothing about the merchant."""

    message = serializers.CharField(source="customer_message", read_only=True)
    final = serializers.BooleanField(source="is_final", read_only=True)
    mpesa_receipt_number = serializers.CharField(source="payment_receipt", read_only=True)

    class Meta:
        model = Transaction
        fields = ("id", "status", "final", "message", "mpesa_receipt_number", "amount")
        read_only_fields = fields


class PayoutRequestSerializer(serializers.ModelSerializer):
    """A payout waiting for a second manager's approval: nothing was sent yet."""

    class Meta:
        model = PayoutRequest
        fields = ("id", "state", "amount", "phone_number", "command_id", "remarks", "created_at")
        read_only_fields = fields


class RefundRequestSerializer(serializers.ModelSerializer):
    """A refund waiting for a second manager's approval: nothing was sent yet."""

    original = serializers.UUIDField(source="original_id", help_text="The payment to refund.")

    class Meta:
        model = RefundRequest
        fields = ("id", "state", "amount", "original", "remarks", "created_at")
        read_only_fields = fields
