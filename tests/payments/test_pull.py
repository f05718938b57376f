"""Pull Transactions: payments whose confirmation never came are booked once, through the
confirmation's own path, marked as recovered and audited; a differing amount is flagged."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
import responses
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.daraja.dates import NAIROBI
from payments.enums import TransactionStatus, TransactionType
from payments.exceptions import PaymentValidationError
from payments.models import AuditRecord, CallbackEvent, PullTransactionsRun, Transaction
from payments.services.pull import OVERLAP, RETENTION, pull_transactions_recover
from payments.signals import c2b_payment_received, payment_failed, payment_succeeded

from .conftest import SANDBOX

pytestmark = pytest.mark.django_db

QUERY_URL = f"{SANDBOX}/pulltransactions/v1/query"
PHONE = "254708374149"
NOTHING = {"ResponseRefID": "ref-0", "ResponseCode": "1001", "Response": "[[]]"}


def row(receipt: str, amount="100.0", *, minutes_ago: int = 10, **changes) -> dict:
    """A Pull Transactions row as reported (API.md §13)."""
    when = timezone.now().astimezone(NAIROBI) - timedelta(minutes=minutes_ago)
    return {
        "transactionId": receipt,
        "trxDate": when.isoformat(timespec="seconds"),
        "msisdn": int(PHONE),
        "sender": "MPESA",
        "transactiontype": "c2b-pay-bill-debit",
        "billreference": "INV42",
        "amount": amount,
        "organizationname": "Test Org",
        **changes,
    }


def page(*rows) -> dict:
    return {"ResponseRefID": "ref-1", "ResponseCode": "1000", "Response": [list(rows)]}


def listing(daraja, *pages: dict, end: dict = NOTHING) -> None:
    """Daraja answers these pages in turn, then ``end`` for every later offset."""
    daraja.remove(responses.POST, QUERY_URL)
    for body in (*pages, end):
        daraja.post(QUERY_URL, json=body)


def pull_requests(daraja) -> list[dict]:
    return [json.loads(c.request.body) for c in daraja.calls if "pulltransactions" in c.request.url]


def sent_offsets(daraja) -> list[str]:
    return [body["OffSetValue"] for body in pull_requests(daraja)]


@pytest.fixture
def announced():
    """Every payment signal sent, as (signal, transaction id)."""
    seen: list[tuple[str, object]] = []
    receivers = {}
    for name, signal in (
        ("c2b_payment_received", c2b_payment_received),
        ("payment_succeeded", payment_succeeded),
        ("payment_failed", payment_failed),
    ):

        def receiver(sender, transaction, _name=name, **kwargs):
            seen.append((_name, transaction.pk))

        receivers[name] = (signal, receiver)
        signal.connect(receiver)
    yield seen
    for signal, receiver in receivers.values():
        signal.disconnect(receiver)


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """Run a sweep as cron would: on-commit hooks (signals) run as a real commit runs them."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return pull_transactions_recover(**kwargs)

    return run


def stk_push(status: str, *, minutes_old: int = 0, **fields) -> Transaction:
    """One of our STK Pushes of 10 shillings for INV42, ``minutes_old`` minutes old."""
    push = Transaction.objects.create(
        transaction_type=TransactionType.STK_PUSH,
        status=status,
        checkout_request_id=f"ws_CO_pull_{Transaction.objects.count()}",
        amount=10,
        phone_number=PHONE,
        account_reference="INV42",
        shortcode="174379",
        environment="sandbox",
        **fields,
    )
    Transaction.objects.filter(pk=push.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_old)
    )
    return push


def c2b_payments() -> list[Transaction]:
    return list(Transaction.objects.filter(transaction_type=TransactionType.C2B))


def test_a_payment_whose_confirmation_never_came_is_booked_marked_and_audited(
    daraja, sweep, announced
):
    listing(daraja, page(row("SAO7RT61SV", "150.0")))

    report = sweep()

    (payment,) = c2b_payments()
    assert (payment.status, payment.amount, payment.mpesa_receipt_number) == (
        TransactionStatus.SUCCESS,
        150,
        "SAO7RT61SV",
    )
    assert payment.account_reference == "INV42"
    assert payment.shortcode == "174379"
    assert payment.msisdn == "2547******49"  # Pull lists the full number; kept masked
    assert payment.transaction_date is not None
    assert not payment.needs_review
    assert payment.recovered_from == "pull_transactions"
    assert payment.metadata["recovered"]["listed"]["transactionId"] == "SAO7RT61SV"
    assert PHONE not in json.dumps(payment.metadata)
    assert announced == [("c2b_payment_received", payment.pk)]
    (record,) = AuditRecord.objects.filter(action="pull_recover")
    assert (record.transaction, record.amount, record.actor) == (payment, 150, None)
    assert record.details["receipt"] == "SAO7RT61SV"
    assert (report.rows, report.recovered, report.on_ledger, report.finished) == (1, 1, 0, True)


def test_a_second_sweep_books_nothing_again_and_announces_nothing(daraja, sweep, announced):
    listing(daraja, page(row("SAO7RT61SV")))
    sweep()

    listing(daraja, page(row("SAO7RT61SV")))
    report = sweep(since=timezone.now() - timedelta(hours=1))

    assert len(c2b_payments()) == 1
    assert len(announced) == 1
    assert AuditRecord.objects.filter(action="pull_recover").count() == 1
    assert (report.on_ledger, report.booked) == (1, 0)


def test_a_confirmation_that_arrives_after_the_sweep_is_a_duplicate(daraja, sweep, client):
    listing(daraja, page(row("SAO7RT61SV", "10.0")))
    sweep()

    confirmation = {
        "TransactionType": "Pay Bill",
        "TransID": "SAO7RT61SV",
        "TransTime": "20250124105611",
        "TransAmount": "10.00",
        "BusinessShortCode": "174379",
        "BillRefNumber": "INV42",
        "MSISDN": "2547 ***** 149",
    }
    path = "/api/v1/payments/callbacks/c2b/test-callback-secret-0123456789abcdef/confirmation"
    response = client.post(path, json.dumps(confirmation), content_type="application/json")

    assert response.status_code == 200
    assert len(c2b_payments()) == 1
    assert c2b_payments()[0].callback_events.get().outcome == "duplicate"


def test_every_page_is_read_with_its_offset_until_daraja_has_no_more(daraja, sweep):
    listing(
        daraja,
        page(row("SAO7RT61S1"), row("SAO7RT61S2")),
        page(row("SAO7RT61S3")),
    )

    report = sweep()

    assert sent_offsets(daraja) == ["0", "2", "3"]
    assert {p.mpesa_receipt_number for p in c2b_payments()} == {
        "SAO7RT61S1",
        "SAO7RT61S2",
        "SAO7RT61S3",
    }
    assert (report.pages, report.rows, report.recovered, report.finished) == (2, 3, 3, True)


def test_an_empty_page_ends_the_sweep_like_1001(daraja, sweep):
    listing(daraja, page(row("SAO7RT61S1")), end=page())

    report = sweep()

    assert sent_offsets(daraja) == ["0", "1"]
    assert (report.recovered, report.finished) == (1, True)


def test_nothing_found_books_nothing_and_finishes_the_sweep(daraja, sweep):
    listing(daraja)

    report = sweep()

    assert c2b_payments() == []
    assert (report.pages, report.rows, report.finished, report.error) == (0, 0, True, "")
    run = PullTransactionsRun.objects.get()
    assert run.finished_at is not None
    assert run.report["rows"] == 0


def test_malformed_rows_are_reported_and_the_rest_of_the_page_is_booked(daraja, sweep):
    listing(
        daraja,
        page(
            "not a row",
            row("SAO7-RT61"),
            row("SAO7RT61S2", "1e9"),
            row("SAO7RT61S3"),
        ),
        page(row("SAO7RT61S4")),
    )

    report = sweep()

    assert {p.mpesa_receipt_number for p in c2b_payments()} == {"SAO7RT61S3", "SAO7RT61S4"}
    assert sent_offsets(daraja) == ["0", "4", "5"]  # unreadable rows count for the offset
    assert (report.malformed, report.recovered, report.finished) == (3, 2, True)
    assert any("SAO7RT61S2: an amount that is not a number" in line for line in report.lines)
    assert all(PHONE not in line for line in report.lines)


def test_an_amount_that_differs_from_the_ledger_is_flagged_never_overwritten(
    daraja, sweep, announced
):
    booked = Transaction.objects.create(
        transaction_type=TransactionType.C2B,
        status=TransactionStatus.SUCCESS,
        amount=100,
        mpesa_receipt_number="SAO7RT61SV",
        environment="sandbox",
    )
    listing(daraja, page(row("SAO7RT61SV", "1000.0")))
    report = sweep()
    listing(daraja, page(row("SAO7RT61SV", "1000.0")))
    again = sweep(since=timezone.now() - timedelta(hours=1))

    booked.refresh_from_db()
    assert booked.amount == 100
    assert booked.status == TransactionStatus.SUCCESS
    assert booked.needs_review
    assert "lists 1000.0 for receipt SAO7RT61SV; the ledger has 100" in booked.review_reason
    assert booked.metadata["pull_amount"] == "1000.0"
    assert booked.recovered_from == ""
    assert len(c2b_payments()) == 1
    assert announced == []
    (record,) = AuditRecord.objects.filter(action="pull_amount_differs")
    assert record.transaction == booked
    assert (report.amount_differs, again.amount_differs) == (1, 1)


def test_a_flagged_row_keeps_the_reason_a_person_is_working_on(daraja, sweep):
    booked = Transaction.objects.create(
        transaction_type=TransactionType.C2B,
        status=TransactionStatus.SUCCESS,
        amount=100,
        mpesa_receipt_number="SAO7RT61SV",
        environment="sandbox",
        needs_review=True,
        review_reason="the customer called about it",
    )
    listing(daraja, page(row("SAO7RT61SV", "90.0")))

    sweep()

    booked.refresh_from_db()
    assert booked.review_reason == "the customer called about it"
    assert booked.metadata["pull_amount"] == "90.0"
    assert AuditRecord.objects.filter(action="pull_amount_differs").count() == 1


@pytest.mark.parametrize("status", [TransactionStatus.AWAITING_RECEIPT, TransactionStatus.PENDING])
def test_a_row_that_is_an_stk_push_receipt_completes_the_push_it_paid(
    daraja, sweep, announced, status
):
    # Issue 9: a push the STK query says is paid waits for its receipt; Pull brings it.
    push = stk_push(status, minutes_old=15)
    listing(daraja, page(row("SAO7RT61SV", "10.0", minutes_ago=10)))

    report = sweep()

    push.refresh_from_db()
    assert push.status == TransactionStatus.SUCCESS
    assert push.mpesa_receipt_number == "SAO7RT61SV"
    assert push.recovered_from == "pull_transactions"
    assert c2b_payments() == []
    assert announced == [("payment_succeeded", push.pk)]
    assert AuditRecord.objects.get(action="pull_recover").transaction == push
    assert report.completed_pushes == 1


def test_a_paid_push_already_holding_the_receipt_is_left_alone(daraja, sweep, announced):
    push = stk_push(TransactionStatus.SUCCESS, mpesa_receipt_number="SAO7RT61SV")
    listing(daraja, page(row("SAO7RT61SV", "10.00")))

    report = sweep()

    push.refresh_from_db()
    assert (push.needs_review, push.recovered_from) == (False, "")
    assert c2b_payments() == []
    assert announced == []
    assert report.on_ledger == 1


def test_a_push_that_does_not_fit_is_not_guessed_at(daraja, sweep, announced):
    push = stk_push(TransactionStatus.AWAITING_RECEIPT, minutes_old=15)
    listing(daraja, page(row("SAO7RT61SV", "11.0")))  # another amount

    sweep()

    push.refresh_from_db()
    assert push.status == TransactionStatus.AWAITING_RECEIPT
    (payment,) = c2b_payments()
    assert announced == [("c2b_payment_received", payment.pk)]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"amount": "10.50"}, "not whole shillings"),
        ({"trxDate": "last tuesday"}, "trxDate is not a date"),
    ],
)
def test_a_row_that_cannot_be_booked_as_listed_is_flagged_and_announced_to_nobody(
    daraja, sweep, announced, changes, problem
):
    listing(daraja, page(row("SAO7RT61SV", **changes)))

    report = sweep()

    (payment,) = c2b_payments()
    assert payment.needs_review
    assert problem in payment.review_reason
    assert payment.recovered_from == "pull_transactions"
    assert announced == []
    assert report.flagged == 1


def test_daraja_ignoring_the_offset_stops_the_sweep_unfinished(daraja, sweep):
    same = page(row("SAO7RT61S1"), row("SAO7RT61S2"))
    listing(daraja, same, same, end=same)

    report = sweep()

    assert sent_offsets(daraja) == ["0", "2"]
    assert len(c2b_payments()) == 2
    assert not report.finished
    assert "OffSetValue ignored" in report.error
    assert PullTransactionsRun.objects.get().finished_at is None


def test_a_daraja_error_keeps_what_was_booked_and_leaves_the_sweep_to_repeat(daraja, sweep):
    daraja.post(QUERY_URL, json=page(row("SAO7RT61S1")))
    daraja.post(QUERY_URL, status=500, json={"errorCode": "500.003.1001"})

    first = sweep()

    assert [p.mpesa_receipt_number for p in c2b_payments()] == ["SAO7RT61S1"]
    assert "Daraja error" in first.error
    assert not first.finished
    run = PullTransactionsRun.objects.get()
    assert (run.finished_at, run.error) == (None, first.error)


def test_the_automatic_window_starts_where_the_last_finished_sweep_ended(daraja, sweep):
    listing(daraja)
    first = sweep()
    assert first.until - first.since == RETENTION  # the first sweep reads all Daraja keeps

    second = sweep()

    assert second.since == first.until - OVERLAP
    assert pull_requests(daraja)[-1]["StartDate"] == (first.until - OVERLAP).astimezone(
        NAIROBI
    ).strftime("%Y-%m-%d %H:%M:%S")


def test_an_unfinished_or_hand_chosen_sweep_moves_no_watermark(daraja, sweep):
    now = timezone.now()
    PullTransactionsRun.objects.create(
        shortcode="174379",
        since=now - timedelta(hours=5),
        until=now - timedelta(hours=3),
        finished_at=now - timedelta(hours=3),
    )
    PullTransactionsRun.objects.create(  # unfinished
        shortcode="174379", since=now - timedelta(hours=3), until=now - timedelta(hours=1)
    )
    listing(daraja)
    sweep(since=now - timedelta(minutes=30))  # by hand

    report = sweep()

    assert report.since == now - timedelta(hours=3) - OVERLAP


def test_runs_older_than_a_month_are_forgotten_but_the_watermark_stays(daraja, sweep):
    now = timezone.now()
    watermark = PullTransactionsRun.objects.create(
        shortcode="174379",
        since=now - timedelta(days=41),
        until=now - timedelta(days=40),
        finished_at=now - timedelta(days=40),
    )
    old = PullTransactionsRun.objects.create(
        shortcode="174379", since=now - timedelta(days=42), until=now - timedelta(days=41)
    )
    PullTransactionsRun.objects.filter(pk__in=[watermark.pk, old.pk]).update(
        started_at=now - timedelta(days=40)
    )
    listing(daraja, end={"ResponseCode": "1002"})  # this sweep fails: the old watermark stays

    report = sweep()

    assert report.error
    assert set(PullTransactionsRun.objects.values_list("pk", flat=True)) == {
        watermark.pk,
        PullTransactionsRun.objects.latest("started_at").pk,
    }


def test_rows_already_on_the_ledger_cost_one_query_a_page(daraja, sweep):
    receipts = [f"SAO7RT6{n:03d}" for n in range(40)]
    for receipt in receipts:
        Transaction.objects.create(
            transaction_type=TransactionType.C2B,
            status=TransactionStatus.SUCCESS,
            amount=100,
            mpesa_receipt_number=receipt,
            environment="sandbox",
        )

    def queries(count: int) -> int:
        listing(daraja, page(*(row(receipt) for receipt in receipts[:count])))
        with CaptureQueriesContext(connection) as captured:
            report = sweep(since=timezone.now() - timedelta(hours=1))
        assert report.on_ledger == count
        return len(captured)

    assert queries(40) == queries(2)


def test_a_sweep_that_resumes_after_more_than_48_hours_says_what_it_cannot_check(daraja, sweep):
    now = timezone.now()
    PullTransactionsRun.objects.create(
        shortcode="174379",
        since=now - timedelta(days=4),
        until=now - timedelta(days=3),
        finished_at=now - timedelta(days=3),
    )
    listing(daraja)

    report = sweep()

    assert report.until - report.since == RETENTION
    assert any("against the M-Pesa statement" in line for line in report.lines)


def test_a_dry_run_asks_daraja_and_books_nothing(daraja, sweep, announced):
    Transaction.objects.create(
        transaction_type=TransactionType.C2B,
        status=TransactionStatus.SUCCESS,
        amount=100,
        mpesa_receipt_number="SAO7RT61S1",
        environment="sandbox",
    )
    listing(daraja, page(row("SAO7RT61S1", "120.0"), row("SAO7RT61S2")))

    report = sweep(dry_run=True)

    assert [p.mpesa_receipt_number for p in c2b_payments()] == ["SAO7RT61S1"]
    assert not Transaction.objects.get(mpesa_receipt_number="SAO7RT61S1").needs_review
    assert announced == []
    assert not PullTransactionsRun.objects.exists()
    assert not AuditRecord.objects.exists()
    assert (report.recovered, report.amount_differs) == (1, 1)
    assert "would book" in report.summary()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"until": timezone.now() + timedelta(hours=1)}, "until"),
        ({"since": timezone.now(), "until": timezone.now() - timedelta(hours=1)}, "since"),
        ({"since": timezone.now().replace(tzinfo=None)}, "since"),
        ({"shortcode": "12"}, "shortcode"),
    ],
)
def test_a_bad_window_is_refused_before_daraja_is_asked(daraja, kwargs, field):
    with pytest.raises(PaymentValidationError) as excinfo:
        pull_transactions_recover(**kwargs)

    assert excinfo.value.field == field
    assert len(daraja.calls) == 0


# -- the commands --------------------------------------------------------------------------------


def test_the_command_sweeps_the_window_it_is_given_in_kenyan_time(daraja):
    listing(daraja, page(row("SAO7RT61SV")))
    out = StringIO()

    call_command(
        "mpesa_pull_transactions",
        "--since",
        "2025-01-24T08:00",
        "--until",
        "2025-01-24T10:30:00+03:00",
        stdout=out,
    )

    first = pull_requests(daraja)[0]
    assert (first["StartDate"], first["EndDate"]) == ("2025-01-24 08:00:00", "2025-01-24 10:30:00")
    assert "booked 1" in out.getvalue()
    record = AuditRecord.objects.get(action="pull_recover")
    assert record.details["command"] == "mpesa_pull_transactions"
    assert not PullTransactionsRun.objects.get().automatic


def test_the_command_dry_run_books_nothing(daraja):
    listing(daraja, page(row("SAO7RT61SV")))
    out = StringIO()

    call_command("mpesa_pull_transactions", "--dry-run", stdout=out)

    assert c2b_payments() == []
    assert "SAO7RT61SV: 100.0 not on the ledger: would book" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "not an ISO 8601"),
        (["--until", "2999-01-01T00:00"], "until: is in the future"),
        (["--shortcode", "0"], "shortcode"),
    ],
)
def test_the_command_refuses_bad_arguments_clearly(daraja, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("mpesa_pull_transactions", *args, stdout=StringIO())
    assert len(daraja.calls) == 0


def test_the_command_fails_when_daraja_does(daraja):
    daraja.post(QUERY_URL, status=400, json={"errorCode": "400.002.02", "errorMessage": "Bad"})

    with pytest.raises(CommandError, match="Daraja error"):
        call_command("mpesa_pull_transactions", stdout=StringIO())


def test_reconcile_sweeps_pull_transactions_only_when_asked(daraja):
    listing(daraja, page(row("SAO7RT61SV")))

    call_command("mpesa_reconcile", stdout=StringIO())
    assert sent_offsets(daraja) == []

    out = StringIO()
    call_command("mpesa_reconcile", "--pull", stdout=out)

    assert [p.mpesa_receipt_number for p in c2b_payments()] == ["SAO7RT61SV"]
    assert "Pull Transactions" in out.getvalue()
    record = AuditRecord.objects.get(action="pull_recover")
    assert (record.details["command"], record.details["pull"]) == ("mpesa_reconcile", True)


def test_reconcile_reports_a_pull_it_could_not_make_and_goes_on(daraja, settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "SHORTCODE": ""}
    out = StringIO()

    call_command("mpesa_reconcile", "--pull", stdout=out)

    assert "Pull Transactions not swept: Pull Transactions needs PAYMENTS SHORTCODE" in (
        out.getvalue()
    )
    assert "Alerts:" in out.getvalue()


def test_amounts_are_compared_as_numbers_not_text(daraja, sweep):
    Transaction.objects.create(
        transaction_type=TransactionType.C2B,
        status=TransactionStatus.SUCCESS,
        amount=2697,
        mpesa_receipt_number="SAO7RT61SV",
        environment="sandbox",
    )
    listing(daraja, page(row("SAO7RT61SV", 2697.0), row("SAO7RT61SV", "2697.00")))

    report = sweep()

    assert (report.on_ledger, report.amount_differs) == (2, 0)


# -- registration and its notice URL ----------------------------------------------------------

REGISTER_URL = f"{SANDBOX}/pulltransactions/v1/register"
SECRET = "test-callback-secret-0123456789abcdef"
NOTICE_PATH = f"/api/v1/payments/callbacks/c2b/{SECRET}/pull"


def test_register_pull_sends_the_nominated_number_and_our_notice_url(daraja, settings):
    settings.PAYMENTS = {**settings.PAYMENTS, "PULL_NOMINATED_NUMBER": "0722 000 000"}
    daraja.post(REGISTER_URL, json={"ResponseStatus": "1000", "ResponseDescription": "Done"})
    out = StringIO()

    call_command("mpesa_register_urls", "--pull", stdout=out)

    (body,) = pull_requests(daraja)
    assert body == {
        "ShortCode": "174379",
        "RequestType": "Pull",
        "NominatedNumber": "254722000000",
        "CallBackURL": f"https://pay.example.co.ke{NOTICE_PATH}",
    }
    assert "Registered: 1000 Done" in out.getvalue()
    record = AuditRecord.objects.get(action="register_pull")
    assert (record.outcome, record.details["pull"]) == ("1000 Done", True)
    assert SECRET not in json.dumps(record.details)


def test_register_pull_takes_the_number_from_the_command_line(daraja):
    daraja.post(REGISTER_URL, json={"ResponseStatus": "1001", "ResponseDescription": "Already"})

    call_command(
        "mpesa_register_urls", "--pull", "--nominated-number", "0722000001", stdout=StringIO()
    )

    assert pull_requests(daraja)[0]["NominatedNumber"] == "254722000001"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "MPESA_PULL_NOMINATED_NUMBER"),
        (["--nominated-number", "0800 123"], "nominated_number: not a Kenyan mobile number"),
    ],
)
def test_register_pull_refuses_a_missing_or_bad_number_before_daraja(daraja, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("mpesa_register_urls", "--pull", *args, stdout=StringIO())

    assert len(daraja.calls) == 0
    assert AuditRecord.objects.get(action="register_pull").outcome.startswith("failed")


def test_a_notice_at_the_pull_url_is_stored_and_acknowledged(client):
    response = client.post(NOTICE_PATH, '{"anything": ["Daraja", 1]}', content_type="text/plain")

    assert response.json() == {"ResultCode": 0, "ResultDesc": "Success"}
    event = CallbackEvent.objects.get()
    assert (event.kind, event.outcome, event.body) == (
        "pull_notice",
        "processed",
        '{"anything": ["Daraja", 1]}',
    )
    wrong = NOTICE_PATH.replace(SECRET, "x" * 36)
    assert client.post(wrong, "{}", content_type="application/json").status_code == 404
