"""The simulator's state, in the database so that every worker process of a server shares it."""

from __future__ import annotations

from django.db import models


class SimulatedToken(models.Model):
    token = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"token until {self.expires_at:%H:%M:%S}"


class SimulatedRequest(models.Model):
    """A money or query request the simulator accepted, with what it decided to answer."""

    kind = models.CharField(max_length=16)  # stk, b2c, reversal, balance, status, c2b
    checkout_request_id = models.CharField(max_length=64, null=True, unique=True)  # noqa: DJ001
    conversation_id = models.CharField(max_length=64, unique=True)
    originator_conversation_id = models.CharField(max_length=64, blank=True, db_index=True)
    receipt = models.CharField(max_length=20, blank=True, db_index=True)
    amount = models.PositiveIntegerField(default=0)
    phone_number = models.CharField(max_length=20, blank=True)
    result_code = models.CharField(max_length=20, blank=True)
    result_desc = models.CharField(max_length=255, blank=True)
    # The result is decided at once but only "happens" when its callback is due.
    completes_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.conversation_id} -> {self.result_code}"


class C2BRegistration(models.Model):
    shortcode = models.CharField(max_length=16, unique=True)
    validation_url = models.URLField(max_length=500)
    confirmation_url = models.URLField(max_length=500)
    response_type = models.CharField(max_length=16)
    api_version = models.CharField(max_length=4)

    def __str__(self) -> str:
        return f"C2B URLs of {self.shortcode}"


class PullRegistration(models.Model):
    shortcode = models.CharField(max_length=16, unique=True)
    nominated_number = models.CharField(max_length=20)
    callback_url = models.URLField(max_length=500)

    def __str__(self) -> str:
        return f"Pull Transactions of {self.shortcode}"


class LedgerAccount(models.Model):
    """One account of a simulated shortcode; payments, payouts and reversals move it."""

    shortcode = models.CharField(max_length=16)
    name = models.CharField(max_length=64)
    balance = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shortcode", "name"], name="sim_ledger_account")
        ]

    def __str__(self) -> str:
        return f"{self.shortcode} {self.name}: {self.balance}"


class OutboxCallback(models.Model):
    """A body to POST to a callback URL once it is due, by the delivery worker."""

    url = models.URLField(max_length=500)
    body = models.JSONField()
    send_after = models.DateTimeField(db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Work to do when the callback is sent, e.g. "then confirm" for C2B validation.
    follow_up = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"callback to {self.url} ({'sent' if self.sent_at else 'queued'})"
