"""Request and response shapes of the API. No service calls here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from payments.enums import B2CCommand
from payments.models import (
    BalanceSnapshot,
    DarajaInquiry,
    PayoutRequest,
    RefundRequest,
    Transaction,
)
from payments.selectors import shortcode_label

# Metadata keys safe to show the owner of a transaction: no callback URLs, no raw bodies.
SAFE_METADATA_KEYS = ("customer_message",)


class StkPushRequestSerializer(serializers.Serializer):
    phone_number = serializers.CharField(
        max_length=32, help_text="Kenyan mobile number: 07…, 01…, 2547…, 2541… or +254…"
    )
    amount = serializers.IntegerField(help_text="Whole shillings, 1 to 250000.")
    account_reference = serializers.CharField(
        max_length=64, help_text="Shown in the M-Pesa prompt; 1 to 12 letters, digits, spaces, -."
    )
    transaction_desc = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )


class TransactionSerializer(serializers.ModelSerializer):
    message = serializers.CharField(
        source="customer_message", read_only=True, help_text="One sentence for the customer."
    )
    mpesa_receipt_number = serializers.CharField(
        source="payment_receipt",
        read_only=True,
        help_text="M-Pesa's receipt once paid (also when the payment is booked as `booked_as`).",
    )
    metadata = serializers.SerializerMethodField()

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
        )
        read_only_fields = fields

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
    phone_number = serializers.CharField(max_length=32)
    amount = serializers.IntegerField(help_text="Whole shillings, 10 to 250000.")
    command_id = serializers.ChoiceField(
        choices=B2CCommand.choices, default=B2CCommand.BUSINESS_PAYMENT
    )
    remarks = serializers.CharField(max_length=100, help_text="2 to 100 characters.")
    occasion = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class ReversalRequestSerializer(serializers.Serializer):
    transaction = serializers.CharField(
        max_length=64, help_text="Our transaction id, or the payment's M-Pesa receipt number."
    )
    amount = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Default: all not yet refunded."
    )
    remarks = serializers.CharField(max_length=100, required=False, default="Refund")


class BalanceRequestSerializer(serializers.Serializer):
    shortcode = serializers.CharField(
        max_length=16,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="Ask about this shortcode only. Default: the PayBill and the payout shortcode.",
    )


class RegisterUrlsSerializer(serializers.Serializer):
    api_version = serializers.ChoiceField(choices=("v1", "v2"), default="v2")
    response_type = serializers.ChoiceField(choices=("Completed", "Cancelled"), default="Completed")
    shortcode = serializers.CharField(
        max_length=16, required=False, allow_blank=True, default="", trim_whitespace=False
    )


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
    amount = serializers.IntegerField(help_text="Whole shillings, 1 to 250000.")
    account_reference = serializers.CharField(max_length=64)
    description = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
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
    phone_number = serializers.CharField(max_length=32)


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
