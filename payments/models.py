"""The ledger: transactions, the raw callbacks Daraja sent us, and idempotency keys.

Models hold fields, constraints and the guarded status transition; no I/O.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

from payments.enums import (
    FINAL_STATUSES,
    STATUS_MESSAGES,
    CallbackKind,
    CallbackOutcome,
    InquiryKind,
    InquiryStatus,
    StatementCategory,
    TransactionStatus,
    TransactionType,
    can_transition,
    stk_result_outcome,
)
from payments.exceptions import InvalidTransitionError

# A result code explains the outcome, except while awaiting it or after a refund.
STATUSES_WITHOUT_RESULT_MESSAGE = frozenset(
    {
        TransactionStatus.PENDING,
        TransactionStatus.UNKNOWN,
        TransactionStatus.AWAITING_RECEIPT,
        TransactionStatus.REVERSED,
    }
)
# Incoming payments: one M-Pesa receipt is one of these rows, never two.
INCOMING_TYPES = (TransactionType.STK_PUSH, TransactionType.C2B)


def new_callback_token() -> str:
    """An unguessable token for a callback URL: Daraja signs nothing, so the URL is the secret."""
    return secrets.token_hex(24)


class ForObject(models.Model):
    """An optional link to one of the host project's objects (an order, an invoice), set through
    the services' ``for_object`` and carried by the signals.

    The id is text, so any primary key fits (integers, UUIDs); find an object's rows with
    ``payments.selectors.transactions_for(obj)``.
    """

    for_content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    for_object_id = models.CharField(max_length=64, blank=True)
    for_object = GenericForeignKey("for_content_type", "for_object_id")

    class Meta:
        abstract = True


class Transaction(ForObject):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    transaction_type = models.CharField(max_length=16, choices=TransactionType.choices)
    status = models.CharField(
        max_length=16, choices=TransactionStatus.choices, default=TransactionStatus.UNKNOWN
    )
    phone_number = models.CharField(max_length=20, blank=True)
    amount = models.PositiveIntegerField(help_text="Whole Kenyan shillings.")
    account_reference = models.CharField(max_length=20, blank=True)
    transaction_desc = models.CharField(max_length=100, blank=True)
    merchant_request_id = models.CharField(max_length=64, blank=True)
    # NULL (not "") when unset, so that the unique constraints apply only to real ids.
    checkout_request_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    conversation_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    originator_conversation_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    mpesa_receipt_number = models.CharField(max_length=20, blank=True)
    result_code = models.CharField(max_length=20, blank=True)
    result_desc = models.CharField(max_length=255, blank=True)
    transaction_date = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    metadata = models.JSONField(default=dict, blank=True)
    environment = models.CharField(max_length=16)
    shortcode = models.CharField(max_length=16, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mpesa_transactions",
    )
    callback_token = models.CharField(
        max_length=64, unique=True, default=new_callback_token, editable=False
    )
    needs_review = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=255, blank=True)
    last_queried_at = models.DateTimeField(null=True, blank=True)
    # Reversals point at the payment they refund; the payment sums what was refunded.
    original = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )
    reversed_amount = models.PositiveIntegerField(default=0)
    # C2B MSISDN exactly as Daraja sent it: masked or hashed, never a usable phone number.
    msisdn = models.CharField(max_length=128, blank=True)
    counterparty_name = models.CharField(
        max_length=150, blank=True, help_text="The payer (C2B) or recipient (B2C) M-Pesa named."
    )
    command_id = models.CharField(max_length=32, blank=True)
    remarks = models.CharField(max_length=100, blank=True)
    # An STK Push whose payment was booked first from its C2B confirmation (the receipt is on
    # that row, once): paid, but not a second entry on the ledger.
    booked_as = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="linked_pushes",
        help_text="The C2B payment this push was booked as (its confirmation came first).",
    )
    # Hash of the checkout link that started this push: one live payment per link.
    checkout_link = models.CharField(max_length=40, blank=True, db_index=True)
    # A payment whose confirmation never reached us, booked from where it was found later.
    recovered_from = models.CharField(
        max_length=32,
        blank=True,
        help_text="Where this payment was found after its confirmation never reached us "
        "(pull_transactions: M-Pesa's Pull Transactions API; statement: an imported M-Pesa "
        "statement).",
    )

    class Meta:
        db_table = "mpesa_transactions"
        permissions = [
            ("pay_out", "Can send money with B2C payouts"),
            ("refund", "Can refund payments with M-Pesa reversals"),
            ("view_balance", "Can view and refresh the M-Pesa account balance"),
            ("approve_payout", "Can approve another user's large payout"),
            ("approve_refund", "Can approve another user's large refund"),
            ("create_checkout_link", "Can create hosted checkout links"),
            ("query_status", "Can ask M-Pesa for the status of a transaction"),
            ("export_transactions", "Can export transactions as CSV"),
            ("register_c2b_urls", "Can register the C2B URLs with M-Pesa"),
        ]
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="mpesa_txn_status_created"),
            models.Index(fields=["transaction_type", "created_at"], name="mpesa_txn_type_created"),
            models.Index(fields=["phone_number", "created_at"], name="mpesa_txn_phone_created"),
            models.Index(fields=["user", "created_at"], name="mpesa_txn_user_created"),
            models.Index(fields=["created_at"], name="mpesa_txn_created"),
            # The back-office search (selectors.transaction_search): a receipt by its first
            # characters (LIKE 'NLJ7%' needs the pattern operator class on PostgreSQL unless the
            # database collation is "C"; equality uses it too; other databases ignore it), an
            # account reference whole in any case (UPPER(account_reference) = UPPER(...)).
            models.Index(
                fields=["mpesa_receipt_number"],
                name="mpesa_txn_receipt_prefix",
                opclasses=["varchar_pattern_ops"],
            ),
            models.Index(Upper("account_reference"), name="mpesa_txn_account_ref_upper"),
            models.Index(fields=["needs_review", "created_at"], name="mpesa_txn_review_created"),
            models.Index(fields=["for_content_type", "for_object_id"], name="mpesa_txn_for_object"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=TransactionStatus.values),
                name="mpesa_txn_status_valid",
            ),
            # One incoming payment per M-Pesa receipt, whether the STK callback or the C2B
            # confirmation announced it, however often and in whatever order.
            models.UniqueConstraint(
                fields=["mpesa_receipt_number"],
                condition=models.Q(transaction_type__in=INCOMING_TYPES)
                & ~models.Q(mpesa_receipt_number=""),
                name="mpesa_txn_incoming_receipt_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_transaction_type_display()} {self.amount} KES ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def payment_receipt(self) -> str:
        """The M-Pesa receipt of this payment, also when it was booked as its C2B twin."""
        if self.mpesa_receipt_number or self.booked_as_id is None:
            return self.mpesa_receipt_number
        return self.booked_as.mpesa_receipt_number

    @property
    def customer_message(self) -> str:
        """One short sentence a customer understands, from the result code or the status."""
        explained_by_code = (
            self.transaction_type == TransactionType.STK_PUSH
            and self.result_code
            and self.status not in STATUSES_WITHOUT_RESULT_MESSAGE
        )
        if explained_by_code:
            return stk_result_outcome(self.result_code).message
        return STATUS_MESSAGES[self.status]

    def can_transition_to(self, status: str) -> bool:
        return can_transition(self.status, status)

    def transition_to(self, status: str) -> None:
        """Change the status in memory, refusing any move the transition table forbids."""
        if not self.can_transition_to(status):
            raise InvalidTransitionError(self.status, status)
        self.status = status

    def flag_for_review(self, reason: str) -> None:
        self.needs_review = True
        self.review_reason = reason[:255]


class CallbackEvent(models.Model):
    """A body Daraja posted to us, stored raw before anything else happens to it."""

    kind = models.CharField(max_length=16, choices=CallbackKind.choices)
    token = models.CharField(max_length=64, db_index=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(
        blank=True,
        help_text="Exactly as received when it is UTF-8 text without NUL bytes (the normal "
        "case); otherwise a readable rendering with \\xNN escapes, the bytes being in raw_body.",
    )
    # A text column holds neither NUL (PostgreSQL refuses it) nor invalid UTF-8: such bodies
    # keep their exact bytes here. Read both through received_bytes.
    raw_body = models.BinaryField(null=True, blank=True, editable=False)
    outcome = models.CharField(
        max_length=16,
        choices=CallbackOutcome.choices,
        default=CallbackOutcome.RECEIVED,
        db_index=True,
    )
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    transaction = models.ForeignKey(
        Transaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="callback_events",
    )
    inquiry = models.ForeignKey(
        "DarajaInquiry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="callback_events",
    )

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["kind", "outcome"], name="mpesa_cb_kind_outcome")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} callback {self.pk} ({self.outcome})"

    @property
    def received_bytes(self) -> bytes:
        """The body exactly as it was posted, whichever column holds it."""
        if self.raw_body is not None:
            return bytes(self.raw_body)  # a memoryview on PostgreSQL
        return self.body.encode("utf-8")


class DarajaInquiry(models.Model):
    """A balance or transaction-status request: Daraja answers later at its own URLs."""

    kind = models.CharField(max_length=16, choices=InquiryKind.choices)
    status = models.CharField(
        max_length=16, choices=InquiryStatus.choices, default=InquiryStatus.UNKNOWN
    )
    token = models.CharField(max_length=64, unique=True, default=new_callback_token, editable=False)
    transaction = models.ForeignKey(
        Transaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="inquiries",
    )
    originator_conversation_id = models.CharField(max_length=64, blank=True)
    conversation_id = models.CharField(max_length=64, blank=True)
    result_code = models.CharField(max_length=20, blank=True)
    result_desc = models.CharField(max_length=255, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "Daraja inquiries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} inquiry {self.pk} ({self.status})"


class BalanceSnapshot(models.Model):
    """One account's balance as Daraja reported it (API.md §6.1)."""

    inquiry = models.ForeignKey(
        DarajaInquiry, null=True, blank=True, on_delete=models.SET_NULL, related_name="balances"
    )
    shortcode = models.CharField(max_length=16, blank=True)
    account = models.CharField(max_length=64)
    currency = models.CharField(max_length=8, blank=True)
    current = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    available = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    reserved = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    uncleared = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    reported_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-reported_at", "-pk"]
        indexes = [
            models.Index(fields=["account", "-reported_at"], name="mpesa_balance_account_time")
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.available} {self.currency}"


class IdempotencyKey(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for repeats.

    Until that response is stored, the key names what its first request created (recorded in
    the same commit as the write-ahead row), so that a retry answers from it even when the
    first request died; ``claimed_at`` starts the lease after which a key that created nothing
    may be processed again.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body: Any = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    transaction = models.ForeignKey(
        Transaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payout_request = models.ForeignKey(
        "PayoutRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    refund_request = models.ForeignKey(
        "RefundRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="mpesa_idempotency_user_key")
        ]

    def __str__(self) -> str:
        return f"Idempotency key {self.key!r}"


class ApprovalRequest(models.Model):
    """Money out asked for by a staff member, the maker. Above its approval threshold it waits
    for a second staff member, the checker, before anything is sent."""

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        SENT = "sent", "Sent"
        REJECTED = "rejected", "Rejected"

    state = models.CharField(max_length=20, choices=State.choices, db_index=True)
    amount = models.PositiveIntegerField()
    remarks = models.CharField(max_length=100)
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class PayoutRequest(ApprovalRequest, ForObject):
    """A payout; ``transaction`` is its B2C transaction once sent, and gets its ``for_object``."""

    phone_number = models.CharField(max_length=20)
    command_id = models.CharField(max_length=32)
    occasion = models.CharField(max_length=100, blank=True)
    transaction = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="payout_request"
    )

    def __str__(self) -> str:
        return f"Payout of {self.amount} KES to {self.phone_number} ({self.get_state_display()})"


class RefundRequest(ApprovalRequest):
    """A refund of the payment ``original``; ``transaction`` is its reversal once sent."""

    original = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, related_name="refund_requests"
    )
    transaction = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="refund_request"
    )

    def __str__(self) -> str:
        return f"Refund of {self.amount} KES ({self.get_state_display()})"


class AuditRecord(models.Model):
    """Who did what to the money, appended by every staff action that moves it or its status."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=32, db_index=True)
    transaction = models.ForeignKey(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_records"
    )
    amount = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=255)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor} at {self.created_at:%Y-%m-%d %H:%M}"


class StatementImport(models.Model):
    """An M-Pesa org portal statement, imported once: the same file again changes nothing."""

    content_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the file.")
    file_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=8)
    account_holder = models.CharField(max_length=150, blank=True)
    shortcode = models.CharField(max_length=16, blank=True)
    account = models.CharField(max_length=64, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    line_count = models.PositiveIntegerField(default=0)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "M-Pesa statement"
        permissions = [
            ("import_statement", "Can import M-Pesa statements"),
            (
                "book_statement_line",
                "Can book a statement line missing from the ledger, or settle a mismatch",
            ),
        ]

    def __str__(self) -> str:
        return f"Statement {self.file_name} ({self.line_count} lines)"


class StatementLine(models.Model):
    """A line of an imported statement, or a ledger payment the statement lacks (no row), with
    what holding it against the other side found."""

    statement = models.ForeignKey(StatementImport, on_delete=models.CASCADE, related_name="lines")
    category = models.CharField(max_length=24, choices=StatementCategory.choices)
    # The line of the file; None for a ledger payment missing from the statement.
    row_number = models.PositiveIntegerField(null=True, blank=True)
    receipt = models.CharField(max_length=20, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    initiated_at = models.DateTimeField(null=True, blank=True)
    details = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=32, blank=True)
    reason_type = models.CharField(max_length=100, blank=True)
    other_party = models.CharField(max_length=150, blank=True)
    account_number = models.CharField(max_length=64, blank=True)
    paid_in = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    withdrawn = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    balance = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    # What the line stands for in the report's totals: the statement's amount, or the
    # ledger's for a payment missing from the statement.
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    ledger_amount = models.PositiveIntegerField(null=True, blank=True)
    transaction = models.ForeignKey(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="statement_lines"
    )
    note = models.CharField(max_length=255, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["statement", "category", "row_number", "pk"]
        indexes = [
            models.Index(fields=["category", "resolved_at"], name="mpesa_stmt_line_open"),
        ]

    def __str__(self) -> str:
        return f"{self.receipt}: KES {self.amount} ({self.get_category_display()})"

    @property
    def waiting_to_book(self) -> bool:
        """A payment the statement shows and the ledger lacks, not yet booked or resolved."""
        return self.category == StatementCategory.MISSING_FROM_LEDGER and self.resolved_at is None


class PullTransactionsRun(models.Model):
    """One Pull Transactions sweep over a time window, and what it found.

    The finished automatic sweeps say how far the ledger has been checked: the next one starts
    there (less an overlap), so an outage of the sweep is caught up when it resumes.
    """

    shortcode = models.CharField(max_length=16)
    since = models.DateTimeField()
    until = models.DateTimeField()
    # Started by cron or without --since; a window chosen by hand moves no watermark.
    automatic = models.BooleanField(default=True)
    started_at = models.DateTimeField(auto_now_add=True)
    # Set only once every page was read: an unfinished sweep is repeated.
    finished_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["shortcode", "automatic", "until"], name="mpesa_pull_watermark")
        ]

    def __str__(self) -> str:
        return f"Pull Transactions {self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M}"


class AlertNotice(models.Model):
    """A problem already e-mailed to the finance managers: each is sent once."""

    key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
