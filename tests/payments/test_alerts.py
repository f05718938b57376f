"""The alert digest: what needs a person, e-mailed to the Finance managers once per problem."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from smtplib import SMTPException

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from payments.enums import TransactionStatus, TransactionType
from payments.models import AlertNotice, Transaction
from payments.selectors import statement_mismatches_open
from payments.services.alerts import alerts_digest_send, alerts_open_counts
from payments.services.roles import CLERK, MANAGER

pytestmark = pytest.mark.django_db


class FailingEmailBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise SMTPException("mail server down")


def person(django_user_model, username: str, *, group: str = MANAGER, **fields):
    user = django_user_model.objects.create_user(username, password=f"pw-{username}-1", **fields)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def managers(django_user_model):
    """Who the digest reaches: active managers with an address, and nobody else."""
    person(django_user_model, "amina", email="amina@example.co.ke")
    person(django_user_model, "brian", email="brian@example.co.ke")
    person(django_user_model, "no-address")
    person(django_user_model, "gone", email="gone@example.co.ke", is_active=False)
    person(django_user_model, "clerk", group=CLERK, email="clerk@example.co.ke")


def made(status=TransactionStatus.SUCCESS, *, minutes_old: int = 0, **fields) -> Transaction:
    fields.setdefault("transaction_type", TransactionType.C2B)
    transaction = Transaction.objects.create(
        status=status, amount=fields.pop("amount", 100), environment="sandbox", **fields
    )
    if minutes_old:
        Transaction.objects.filter(pk=transaction.pk).update(
            created_at=timezone.now() - timedelta(minutes=minutes_old)
        )
    return transaction


def flagged(reason: str = "amount 90 differs from the 100 asked", **fields) -> Transaction:
    fields.setdefault("mpesa_receipt_number", "SAO7RT61SV")
    return made(needs_review=True, review_reason=reason, **fields)


def test_the_digest_goes_to_the_finance_managers_once_per_problem(managers):
    review = flagged()
    stuck = made(TransactionStatus.UNKNOWN, minutes_old=61, transaction_type=TransactionType.B2C)
    made(TransactionStatus.UNKNOWN, minutes_old=59, transaction_type=TransactionType.B2C)  # young

    report = alerts_digest_send()

    (message,) = mail.outbox
    assert message.to == ["amina@example.co.ke", "brian@example.co.ke"]
    assert message.subject == "M-Pesa: 2 new problems need a person"
    assert "Flagged for review (1):" in message.body
    assert "C2B payment of KES 100 (Success), receipt SAO7RT61SV: amount 90 differs" in (
        message.body
    )
    assert f"https://pay.example.co.ke/admin/payments/transaction/{review.pk}/change/" in (
        message.body
    )
    assert "Unknown too long (1):" in message.body
    assert f"/admin/payments/transaction/{stuck.pk}/change/" in message.body
    assert "254708374149" not in message.body
    assert (report.open, report.new, report.recipients) == (2, 2, 2)

    again = alerts_digest_send()

    assert len(mail.outbox) == 1  # nothing new: nothing sent
    assert (again.open, again.new) == (2, 0)
    assert again.summary() == "Alerts: 2 open, none new"


def test_only_what_is_new_is_sent_next_time(managers):
    flagged()
    alerts_digest_send()
    newcomer = flagged(reason="a later result reported 1032 after 0", mpesa_receipt_number="")

    alerts_digest_send()

    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject == "M-Pesa: 1 new problem need a person"
    assert "a later result reported 1032 after 0" in mail.outbox[1].body
    assert "amount 90 differs" not in mail.outbox[1].body
    assert f"/transaction/{newcomer.pk}/change/" in mail.outbox[1].body


def test_a_row_flagged_again_for_another_reason_is_a_new_problem(managers):
    review = flagged()
    alerts_digest_send()
    Transaction.objects.filter(pk=review.pk).update(review_reason="Pull Transactions lists 120")

    alerts_digest_send()

    assert len(mail.outbox) == 2
    assert "Pull Transactions lists 120" in mail.outbox[1].body


def test_with_nobody_to_tell_nothing_is_recorded_as_sent(django_user_model):
    flagged()

    report = alerts_digest_send()

    assert mail.outbox == []
    assert not AlertNotice.objects.exists()
    assert "not e-mailed: no active user of the Finance manager group" in report.summary()

    person(django_user_model, "amina", email="amina@example.co.ke")
    alerts_digest_send()

    assert len(mail.outbox) == 1


@override_settings(EMAIL_BACKEND="tests.payments.test_alerts.FailingEmailBackend")
def test_a_mail_that_fails_records_nothing_and_is_tried_again(managers):
    flagged()

    with pytest.raises(SMTPException):
        alerts_digest_send()

    assert not AlertNotice.objects.exists()
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        alerts_digest_send()
    assert len(mail.outbox) == 1


def test_a_dry_run_lists_and_sends_nothing(managers):
    flagged()

    report = alerts_digest_send(dry_run=True)

    assert mail.outbox == []
    assert not AlertNotice.objects.exists()
    assert report.lines == [
        "Flagged for review: C2B payment of KES 100 (Success), receipt SAO7RT61SV: "
        "amount 90 differs from the 100 asked"
    ]
    assert report.summary() == "Alerts: 1 open, 1 new (would e-mail them)"


def test_statement_mismatches_count_nothing_until_the_statement_import_lands():
    assert statement_mismatches_open().count() == 0
    assert [a.count for a in alerts_open_counts() if a.kind == "statement"] == [0]


def test_reconcile_emails_the_digest_once_and_says_so(managers):
    flagged()
    out = StringIO()

    call_command("mpesa_reconcile", stdout=out)
    call_command("mpesa_reconcile", stdout=out)

    assert len(mail.outbox) == 1
    assert "Alerts: 1 open, 1 new, e-mailed to 2" in out.getvalue()
    assert "Alerts: 1 open, none new" in out.getvalue()


@override_settings(EMAIL_BACKEND="tests.payments.test_alerts.FailingEmailBackend")
def test_reconcile_goes_on_when_the_mail_server_is_down(managers):
    flagged()
    out = StringIO()

    call_command("mpesa_reconcile", stdout=out)

    assert "Alerts not e-mailed: mail server down" in out.getvalue()
    assert not AlertNotice.objects.exists()


def test_reconcile_dry_run_lists_what_it_would_email(managers):
    flagged()
    out = StringIO()

    call_command("mpesa_reconcile", "--dry-run", stdout=out)

    assert "would e-mail: Flagged for review: C2B payment of KES 100" in out.getvalue()
    assert mail.outbox == []
