"""The benchmarks of `make bench`, each a figure of the project against its baseline.

Imported once Django is set up (tests/perf/run.py): rows are seeded through the ORM or SQL in
this process, requests go to the gunicorn over loopback, and SQL statements per request are
counted in this process with Django's test Client against the same database.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import redis
import requests
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from payments.enums import TransactionStatus, TransactionType
from payments.models import Transaction
from tests.perf import run
from tests.perf.daraja import OAUTH_PATH, STK_PATH, STK_QUERY_PATH
from tests.perf.load import Job, alternate, drive, drive_each

API = "/api/v1/payments/mpesa"
CALLBACKS = "/api/v1/payments/callbacks"
PHONE = "254708374149"
CALLBACK_CLIENTS = 8
# Baseline and project take turns, in this many rounds each, through every comparison.
ROUNDS = 4
PUSH_CLIENTS = 8


def statements(captured: CaptureQueriesContext) -> int:
    """SQL statements, BEGIN, COMMIT and savepoints left out (as tests/payments counts)."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
    return sum(not query["sql"].startswith(control) for query in captured.captured_queries)


def estimates(captured: CaptureQueriesContext) -> int:
    """The planner's row estimates asked for (payments/pagination.py): a list past
    EXACT_COUNT_LIMIT rows asks one instead of counting them; it reads no row."""
    return sum(query["sql"].startswith("EXPLAIN") for query in captured.captured_queries)


@dataclass(frozen=True)
class ListSql:
    """The SQL of one list page: statements reading rows, and the count estimate, if any."""

    reads: int
    estimate: int

    def __str__(self) -> str:
        return f"{self.reads} + estimate" if self.estimate else str(self.reads)


@dataclass
class Row:
    figure: str
    project: str
    baseline: str = "—"
    ratio: str = "—"
    goal: str = "—"
    holds: str = "—"


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


class Bench:
    def __init__(self, *, origin: str, daraja: str, log: Path) -> None:
        self.origin = origin
        self.daraja = daraja
        self.log = log
        self.rows: list[Row] = []
        users = get_user_model()
        self.owner = users.objects.create_user("bench-owner", password="bench-owner-pw-1")
        self.staff = users.objects.create_superuser("bench-staff", password="bench-staff-pw-1")
        self.owner_auth = {"Authorization": f"Token {Token.objects.create(user=self.owner).key}"}
        self.staff_auth = {"Authorization": f"Token {Token.objects.create(user=self.staff).key}"}
        self.admin_cookie = self._admin_session()

    # --- helpers --------------------------------------------------------------------------

    def _admin_session(self) -> dict[str, str]:
        client = Client()
        client.force_login(self.staff)
        return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"

    def daraja_counts(self) -> dict[str, int]:
        return requests.get(f"{self.daraja}/_counts", timeout=5).json()

    def daraja_reset(self) -> None:
        requests.post(f"{self.daraja}/_reset", timeout=5)

    def say(self, text: str) -> None:
        print(f"bench: {text}", flush=True)

    @staticmethod
    def check(stats, what: str) -> None:
        if stats.errors:
            raise SystemExit(f"bench: {what}: {len(stats.errors)} errors, e.g. {stats.errors[:3]}")

    def pending_pushes(self, prefix: str, count: int, *, age: timedelta | None = None) -> list:
        rows = Transaction.objects.bulk_create(
            Transaction(
                transaction_type=TransactionType.STK_PUSH,
                status=TransactionStatus.PENDING,
                phone_number=PHONE,
                amount=10,
                account_reference="BENCH",
                transaction_desc="BENCH",
                environment="sandbox",
                shortcode="174379",
                user=self.owner,
                merchant_request_id=f"{prefix}-m-{n}",
                checkout_request_id=f"ws_CO_{prefix}_{n}",
            )
            for n in range(count)
        )
        if age is not None:
            Transaction.objects.filter(pk__in=[r.pk for r in rows]).update(
                created_at=timezone.now() - age
            )
        return rows

    @staticmethod
    def success_callback(push: Transaction, n: int) -> dict:
        return {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": push.merchant_request_id,
                    "CheckoutRequestID": push.checkout_request_id,
                    "ResultCode": 0,
                    "ResultDesc": "The service request is processed successfully.",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": 10.00},
                            {"Name": "MpesaReceiptNumber", "Value": f"BEN{n:07d}"},
                            {"Name": "TransactionDate", "Value": 20261202102115},
                            {"Name": "PhoneNumber", "Value": int(PHONE)},
                        ]
                    },
                }
            }
        }

    def queries(self, method: str, path: str, *, headers: dict, body: dict | None = None) -> int:
        """SQL statements one request makes, counted in this process (the test Client)."""
        client = Client(headers=headers)
        with CaptureQueriesContext(connection) as captured:
            if method == "GET":
                response = client.get(path)
            else:
                response = client.post(path, json.dumps(body), content_type="application/json")
        assert response.status_code < 400, (path, response.status_code, response.content[:300])
        return statements(captured)

    # --- a. callback ingestion ------------------------------------------------------------

    def callback_ingestion(self) -> None:
        count = run.CALLBACKS
        warm = 4 * CALLBACK_CLIENTS
        pushes = self.pending_pushes("cb", 2 * (count + warm) + 2)
        bodies = [self.success_callback(p, n) for n, p in enumerate(pushes)]
        bare = [
            ("POST", self.url(f"/bench/insert/{p.callback_token}"), b, {})
            for p, b in zip(pushes, bodies, strict=True)
        ]
        ours = [
            ("POST", self.url(f"{CALLBACKS}/stk/{p.callback_token}"), b, {})
            for p, b in zip(pushes, bodies, strict=True)
        ]
        split = count + warm
        # In process first, one each: the SQL statements of a callback and of the baseline.
        bare_sql = self.queries(
            "POST", bare[-1][1][len(self.origin) :], headers={}, body=bodies[-1]
        )
        ours_sql = self.queries(
            "POST", ours[-1][1][len(self.origin) :], headers={}, body=bodies[-1]
        )
        self.check(drive(bare[split : split + warm], clients=CALLBACK_CLIENTS), "bare warm-up")
        self.check(drive(ours[:warm], clients=CALLBACK_CLIENTS), "callback warm-up")
        bare, ours = bare[split + warm : split + warm + count], ours[warm : warm + count]
        step = -(-count // ROUNDS)
        stats = alternate(
            {
                "bare": lambda n: drive(bare[n * step : (n + 1) * step], clients=CALLBACK_CLIENTS),
                "ours": lambda n: drive(ours[n * step : (n + 1) * step], clients=CALLBACK_CLIENTS),
            },
            ROUNDS,
        )
        bare_stats, ours_stats = stats["bare"], stats["ours"]
        self.check(bare_stats, "bare insert")
        self.check(ours_stats, "callbacks")
        settled = Transaction.objects.filter(
            pk__in=[p.pk for p in pushes[: warm + count]], status=TransactionStatus.SUCCESS
        ).count()
        if settled != warm + count:
            raise SystemExit(f"bench: {settled} of {warm + count} callbacks settled their push")
        ratio = ours_stats.rate / bare_stats.rate
        self.rows += [
            Row(
                f"STK callback ingestion, {CALLBACK_CLIENTS} clients (req/s)",
                f"{ours_stats.rate:.0f}",
                f"{bare_stats.rate:.0f}",
                f"{ratio:.2f}",
                "≥ 0.5",
                verdict(ratio >= 0.5),
            ),
            Row(
                "  p50 latency (ms)",
                f"{ours_stats.p50:.1f}",
                f"{bare_stats.p50:.1f}",
                f"{ours_stats.p50 / bare_stats.p50:.2f}",
            ),
            Row(
                "  SQL statements per callback (BEGIN/COMMIT/savepoints aside)",
                str(ours_sql),
                str(bare_sql),
            ),
        ]
        self.say(f"callbacks {ours_stats.rate:.0f} r/s vs bare insert {bare_stats.rate:.0f} r/s")

    # --- b. status polling ----------------------------------------------------------------

    def status_polling(self) -> None:
        # One push per client, a fifth of them older than STK_QUERY_AFTER (30 s): those polls
        # may have Daraja asked, in the background, once per push per STK_QUERY_INTERVAL.
        stale = self.pending_pushes("stale", run.POLLERS // 5, age=timedelta(minutes=1))
        pushes = self.pending_pushes("poll", run.POLLERS - len(stale)) + stale
        per_client = run.POLLS_PER_CLIENT

        def jobs(path: str) -> list[list[Job]]:
            return [
                [("GET", self.url(path.format(p.checkout_request_id)), None, self.owner_auth)]
                * per_client
                for p in pushes
            ]

        bare_path = "/bench/read/{}"
        ours_path = f"{API}/stk-push/status/{{}}"
        bare_sql = self.queries(
            "GET", bare_path.format(pushes[0].checkout_request_id), headers=self.owner_auth
        )
        ours_sql = self.queries(
            "GET", ours_path.format(pushes[0].checkout_request_id), headers=self.owner_auth
        )
        self.check(drive([j[0] for j in jobs(bare_path)][:50], clients=10), "bare warm-up")
        self.check(drive([j[0] for j in jobs(ours_path)][:50], clients=10), "poll warm-up")
        Transaction.objects.filter(pk__in=[p.pk for p in stale]).update(last_queried_at=None)
        self.daraja_reset()
        rounds = min(ROUNDS, per_client)
        share = per_client // rounds
        stats = alternate(
            {
                "bare": lambda n: drive_each([j[:share] for j in jobs(bare_path)]),
                "ours": lambda n: drive_each([j[:share] for j in jobs(ours_path)]),
            },
            rounds,
        )
        bare_stats, ours_stats = stats["bare"], stats["ours"]
        self.check(bare_stats, "bare read")
        self.check(ours_stats, "status polls")
        queries = self.daraja_counts().get(STK_QUERY_PATH, 0)
        asked = requests.get(f"{self.daraja}/_queries", timeout=5).json().values()
        # Every push is stale once 30 s old (the run is longer): none may be asked twice
        # within STK_QUERY_INTERVAL (15 s; 0.5 s of slack for the hosts' clocks).
        gaps = [b - a for times in asked for a, b in itertools.pairwise(sorted(times))]
        shortest = min(gaps, default=float("inf"))
        ratio = ours_stats.rate / bare_stats.rate
        clients = f"{len(pushes)} clients"
        self.rows += [
            Row(
                f"Status polling, {clients} (req/s)",
                f"{ours_stats.rate:.0f}",
                f"{bare_stats.rate:.0f}",
                f"{ratio:.2f}",
                "≥ 0.7",
                verdict(ratio >= 0.7),
            ),
            Row(
                "  p50 / p99 latency (ms)",
                f"{ours_stats.p50:.0f} / {ours_stats.percentile(99):.0f}",
                f"{bare_stats.p50:.0f} / {bare_stats.percentile(99):.0f}",
                f"{ours_stats.p50 / bare_stats.p50:.2f} / "
                f"{ours_stats.percentile(99) / bare_stats.percentile(99):.2f}",
            ),
            Row("  SQL statements per poll", str(ours_sql), str(bare_sql)),
            Row(
                f"  STK queries reaching Daraja ({ours_stats.count} polls of {len(pushes)} "
                f"pushes, {len(stale)} stale from the start, in {ours_stats.seconds:.0f} s)",
                f"{queries} ({len(asked)} pushes; shortest gap "
                + ("—" if not gaps else f"{shortest:.1f} s")
                + ")",
                goal="≤ 1 per push per 15 s",
                holds=verdict(shortest >= 14.5),
            ),
        ]
        self.say(
            f"polls {ours_stats.rate:.0f} r/s vs bare read {bare_stats.rate:.0f} r/s, "
            f"{queries} STK queries"
        )

    # --- c. STK push overhead -------------------------------------------------------------

    def push_jobs(self, count: int, first: int) -> list[Job]:
        return [
            (
                "POST",
                self.url(f"{API}/stk-push"),
                {
                    "phone_number": f"2547{(first + n) % 100_000_000:08d}",
                    "amount": 10,
                    "account_reference": "BENCH",
                },
                self.owner_auth,
            )
            for n in range(count)
        ]

    def push_overhead(self) -> None:
        count = run.PUSHES_TIMED
        body = {
            "BusinessShortCode": "174379",
            "Password": "x" * 60,
            "Timestamp": "20261202102115",
            "TransactionType": "CustomerPayBillOnline",
            "Amount": 10,
            "PartyA": PHONE,
            "PartyB": "174379",
            "PhoneNumber": PHONE,
            "CallBackURL": "https://pay.example.co.ke/api/v1/payments/callbacks/stk/" + "x" * 43,
            "AccountReference": "BENCH",
            "TransactionDesc": "BENCH",
        }
        bare = [("POST", f"{self.daraja}{STK_PATH}", body, {"Authorization": "Bearer x"})] * count
        created = lambda r: r.status_code == 201  # noqa: E731
        push_sql = self.queries(
            "POST",
            f"{API}/stk-push",
            headers=self.owner_auth,
            body=self.push_jobs(1, 99_000_000)[0][2],
        )
        self.check(drive(bare[:20], clients=1), "bare warm-up")
        self.check(drive(self.push_jobs(20, 90_000_000), clients=1, expect=created), "warm-up")
        ours = self.push_jobs(count, 0)
        step = -(-count // ROUNDS)
        stats = alternate(
            {
                "bare": lambda n: drive(bare[n * step : (n + 1) * step], clients=1),
                "ours": lambda n: drive(ours[n * step : (n + 1) * step], clients=1, expect=created),
            },
            ROUNDS,
        )
        bare_stats, ours_stats = stats["bare"], stats["ours"]
        self.check(bare_stats, "bare Daraja posts")
        self.check(ours_stats, "pushes")
        overhead = ours_stats.p50 - bare_stats.p50
        self.rows += [
            Row(
                f"STK push through the API, one client, p50 (ms, {count} pushes)",
                f"{ours_stats.p50:.1f}",
                f"{bare_stats.p50:.1f}",
                f"{ours_stats.p50 / bare_stats.p50:.1f}x (+{overhead:.1f} ms)",
                "overhead ≤ 10 ms",
                verdict(overhead <= 10),
            ),
            Row("  SQL statements per push", str(push_sql)),
        ]
        self.say(f"push p50 {ours_stats.p50:.1f} ms vs bare post {bare_stats.p50:.1f} ms")

    # --- d. one OAuth token ---------------------------------------------------------------

    def oauth_calls(self) -> None:
        count = run.PUSHES_OAUTH
        # No token anywhere: the four workers race for the first one.
        redis.Redis.from_url(run.REDIS_URL).flushdb()
        self.daraja_reset()
        stats = drive(
            self.push_jobs(count, 10_000_000),
            clients=PUSH_CLIENTS,
            expect=lambda r: r.status_code == 201,
        )
        self.check(stats, "pushes")
        counts = self.daraja_counts()
        tokens, pushes = counts.get(OAUTH_PATH, 0), counts.get(STK_PATH, 0)
        self.rows.append(
            Row(
                f"OAuth token requests during {pushes} pushes, {run.WORKERS} workers, "
                f"{PUSH_CLIENTS} clients ({stats.rate:.0f} pushes/s)",
                str(tokens),
                goal="exactly 1",
                holds=verdict(tokens == 1),
            )
        )
        self.say(f"{tokens} OAuth requests for {pushes} pushes")

    # --- e. lists at scale ----------------------------------------------------------------

    def ledger_grow(self, size: int) -> None:
        """Top the ledger up to ``size`` rows in SQL (seconds for 300k): mostly C2B payments
        and pushes over the last year, one in ten the owner's, receipts unique."""
        have = Transaction.objects.count()
        if have >= size:
            return
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO mpesa_transactions (
                    id, transaction_type, status, phone_number, amount, account_reference,
                    transaction_desc, merchant_request_id, checkout_request_id,
                    mpesa_receipt_number, result_code, result_desc, created_at, updated_at,
                    metadata, environment, shortcode, callback_token, needs_review,
                    review_reason, user_id, command_id, counterparty_name, msisdn,
                    remarks, reversed_amount, checkout_link, for_object_id, recovered_from)
                SELECT gen_random_uuid(),
                    CASE WHEN n %% 3 = 0 THEN 'C2B' ELSE 'STK_PUSH' END,
                    (ARRAY['success', 'success', 'success', 'failed', 'cancelled', 'pending'])
                        [n %% 6 + 1],
                    '2547' || lpad((n %% 100000000)::text, 8, '0'), 10 + n %% 5000,
                    'ACC' || (n %% 1000), 'seeded', '',
                    CASE WHEN n %% 3 = 0 THEN NULL ELSE 'ws_CO_seed_' || n END,
                    CASE WHEN n %% 6 < 3 THEN 'S' || lpad(n::text, 9, '0') ELSE '' END,
                    '', '', now() - make_interval(secs => n * 100.0), now(),
                    '{}'::jsonb, 'sandbox', '174379', 'seed' || md5(n::text), false, '',
                    CASE WHEN n %% 10 = 0 THEN %s::int ELSE %s::int END,
                    '', '', '', '', 0, '', '', ''
                FROM generate_series(%s::int, %s::int) AS n
                """,
                [self.owner.pk, self.staff.pk, have + 1, size],
            )
            cursor.execute("ANALYZE mpesa_transactions")
        self.say(f"ledger: {size} rows (+{size - have} in {time.perf_counter() - started:.0f} s)")

    def list_pages(self) -> dict[str, tuple[str, dict]]:
        receipt = "S" + f"{6:09d}"  # a seeded success, in every size
        admin = "/admin/payments/transaction/"
        return {
            "API list, staff": (f"{API}/transactions/", self.staff_auth),
            "API list, own": (f"{API}/transactions/", self.owner_auth),
            "API list, filtered (status, type)": (
                f"{API}/transactions/?status=success&transaction_type=C2B",
                self.staff_auth,
            ),
            "API list ?search=<receipt>": (
                f"{API}/transactions/?search={receipt}",
                self.staff_auth,
            ),
            "Admin changelist": (admin, self.admin_cookie),
            "Admin search by receipt": (f"{admin}?q={receipt}", self.admin_cookie),
            "Admin filter by status": (f"{admin}?status__exact=success", self.admin_cookie),
        }

    def page_time(self, path: str, headers: dict) -> float:
        """Milliseconds per page: the median of PAGES requests one after another."""
        session = requests.Session()
        times = []
        for n in range(run.PAGES + 1):
            began = time.perf_counter()
            response = session.get(self.url(path), headers=headers, timeout=120)
            took = time.perf_counter() - began
            if response.status_code != 200:
                raise SystemExit(f"bench: {path}: {response.status_code} {response.text[:300]}")
            if n:  # the first warms the worker's caches
                times.append(took)
        return statistics.median(times) * 1000

    def lists(self) -> None:
        sizes = run.ROWS
        results: dict[str, dict[int, tuple[float, ListSql]]] = {}
        for size in sizes:
            self.ledger_grow(size)
            for name, (path, headers) in self.list_pages().items():
                sql = self._list_queries(path, headers)
                results.setdefault(name, {})[size] = (self.page_time(path, headers), sql)
            self.say(f"lists at {size} rows measured")
        small = sizes[0]
        for name, by_size in results.items():
            for size in sizes[1:]:
                ms_small, sql_small = by_size[small]
                ms, sql = by_size[size]
                ratio = ms / ms_small
                self.rows.append(
                    Row(
                        f"{name}: ms/page (SQL) at {size:,} vs {small:,} rows",
                        f"{ms:.0f} ({sql})",
                        f"{ms_small:.0f} ({sql_small})",
                        f"{ratio:.2f}",
                        "≤ 2x, same SQL reads",
                        # Past EXACT_COUNT_LIMIT a list asks the planner's estimate instead
                        # of counting: one statement more, the same at any size after.
                        verdict(ratio <= 2 and sql.reads == sql_small.reads),
                    )
                )

    def _list_queries(self, path: str, headers: dict) -> ListSql:
        """The SQL one list page makes: staff in the admin (a session), the API by token."""
        if "Cookie" in headers:
            client = Client()
            client.force_login(self.staff)
        else:
            client = Client(headers=headers)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        found = estimates(captured)
        return ListSql(reads=statements(captured) - found, estimate=found)


def render(rows: list[Row]) -> str:
    lines = [
        "| Figure | Project | Baseline | Ratio | Goal | Holds? |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = (row.figure, row.project, row.baseline, row.ratio, row.goal, row.holds)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_all(*, origin: str, daraja: str, log: Path) -> str:
    bench = Bench(origin=origin, daraja=daraja, log=log)
    only = run.ONLY
    for name in ("callback_ingestion", "status_polling", "push_overhead", "oauth_calls", "lists"):
        if not only or name in only:
            getattr(bench, name)()
    return render(bench.rows)
