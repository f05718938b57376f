"""The app's settings object: ``settings.PAYMENTS`` merged over ``DEFAULTS``.

Read values as attributes of ``payments_settings`` (``payments_settings.SHORTCODE``). The object
reloads itself when a test changes ``PAYMENTS`` with ``override_settings``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

ENVIRONMENTS = ("sandbox", "production", "simulator")
STK_TRANSACTION_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")

DEFAULTS: dict[str, Any] = {
    # "sandbox", "production" or "simulator" (a Daraja-compatible server at BASE_URL); picks
    # Daraja's base URL unless BASE_URL overrides it.
    "ENVIRONMENT": "sandbox",
    # Any Daraja-compatible server; plain http only for loopback hosts.
    "BASE_URL": "",
    "CONSUMER_KEY": "",
    "CONSUMER_SECRET": "",
    # PayBill number, or for Buy Goods the store / head-office number (API.md §2.1).
    "SHORTCODE": "",
    "PASSKEY": "",
    "STK_TRANSACTION_TYPE": "CustomerPayBillOnline",
    "TILL_NUMBER": "",
    "B2C_SHORTCODE": "",
    "INITIATOR_NAME": "",
    "INITIATOR_PASSWORD": "",
    "CERTIFICATE_PATH": "",
    # A pre-computed SecurityCredential; wins over INITIATOR_PASSWORD + CERTIFICATE_PATH.
    "SECURITY_CREDENTIAL": "",
    # Public https origin Daraja calls back, e.g. "https://pay.example.co.ke".
    "CALLBACK_BASE_URL": "",
    "CALLBACK_SECRET": "",
    # (connect, read) seconds for every Daraja call.
    "HTTP_TIMEOUT": (5.0, 30.0),
    # Seconds one Daraja operation may take in all, its OAuth token, retries and repeat
    # included: what a request that calls Daraja (a push, a payout, a refund, a balance per
    # shortcode) waits at most. 0: only the timeouts of each attempt bound it.
    "HTTP_DEADLINE": 45.0,
    # Extra attempts for operations that are safe to repeat (queries, OAuth).
    "HTTP_MAX_RETRIES": 2,
    # Refresh the OAuth token this many seconds before Daraja says it expires.
    "TOKEN_EXPIRY_MARGIN": 120,
    # The Django cache shared by all processes for the OAuth token and its refresh lock.
    "TOKEN_CACHE_ALIAS": "default",
    # STK Push amounts, whole shillings (API.md §2.1).
    "STK_MIN_AMOUNT": 1,
    "STK_MAX_AMOUNT": 250_000,
    # The status endpoint queries Daraja for a push still pending after this many seconds...
    "STK_QUERY_AFTER": 30,
    # ...and at most once per this many seconds, across all processes. The query runs off the
    # request path: the poll answers from the database at once, a later poll shows the answer.
    "STK_QUERY_INTERVAL": 15,
    # At most this many of those queries run at once per process, each on a thread of its own;
    # a poll that finds them all busy leaves its push to a later poll or to reconciliation.
    # 0: polls never ask M-Pesa (reconciliation alone does).
    "STK_QUERY_THREADS": 4,
    # (connect, read) seconds for those queries, made once (no retry): a slow Daraja frees
    # the threads soon.
    "STK_QUERY_TIMEOUT": (3.0, 5.0),
    # DRF throttle rates for starting STK Pushes.
    "STK_RATE_PER_PHONE": "5/min",
    "STK_RATE_PER_USER": "30/min",
    # How long an Idempotency-Key and its stored response are kept, in seconds.
    "IDEMPOTENCY_KEY_TTL": 24 * 60 * 60,
    # B2C payout amounts per transaction, whole shillings (API.md §5.1)...
    "B2C_MIN_AMOUNT": 10,
    "B2C_MAX_AMOUNT": 250_000,
    # ...and the most all payouts of one (Nairobi) day may add up to; 0 means no cap.
    "B2C_DAILY_LIMIT": 1_000_000,
    # Dotted path of a callable(notification) -> C2BValidationResult deciding C2B validation.
    "C2B_VALIDATOR": "payments.services.c2b.accept_all_payments",
    # Reconciliation: an STK Push without a CheckoutRequestID becomes "timeout" after this long.
    "STK_EXPIRE_AFTER": 10 * 60,
    # Reconciliation: ask Daraja about one row at most once per this many seconds.
    "RECONCILE_INTERVAL": 60,
    # Reconciliation: a payout or refund of unknown fate (Daraja's answer lost, or its queue
    # timed out) that Transaction Status, asked at least this many seconds after it was
    # recorded, says M-Pesa holds no transaction for is settled failed: it never reached
    # M-Pesa. Asked earlier, the answer may only mean M-Pesa has not recorded it yet.
    "STATUS_NOT_FOUND_GRACE": 60 * 60,
    # A payout waits for a second person's approval when it would take the maker's payouts
    # sent without approval today (Kenyan day), or those to its phone number, above this many
    # shillings.
    "PAYOUT_APPROVAL_THRESHOLD": 10_000,
    # A C2B confirmation completes one of our STK Pushes (same shortcode, account reference,
    # amount and phone) created at most this many seconds before it was paid.
    "C2B_STK_MATCH_WINDOW": 60 * 60,
    # A refund waits for a second person's approval when it would take the maker's refunds
    # sent without approval today, or those of its payment in total, above this many shillings.
    "REFUND_APPROVAL_THRESHOLD": 10_000,
    # Hosted checkout links expire after this many seconds unless given an expiry.
    "CHECKOUT_LINK_TTL": 24 * 60 * 60,
    # Networks allowed to post callbacks (addresses or CIDR networks; "safaricom" stands for
    # Safaricom's published list). Empty: off, any source. A callback from elsewhere is stored
    # with outcome "refused", never processed, and answered 403. The client address is read
    # behind DRF's NUM_PROXIES trusted proxies (payments/network.py).
    "CALLBACK_ALLOWED_NETWORKS": (),
    # Admin login: after this many failed logins for one username, or from one client address,
    # within ADMIN_LOGIN_LOCKOUT seconds of the first, further attempts are refused until
    # those seconds have passed.
    "ADMIN_LOGIN_FAILURES_PER_USERNAME": 5,
    "ADMIN_LOGIN_FAILURES_PER_ADDRESS": 20,
    "ADMIN_LOGIN_LOCKOUT": 15 * 60,
    # Callback bodies longer than this many bytes are refused with 413, unread: Daraja's are
    # a few KiB. The refusal is logged and listed in the callback inbox, without the body.
    "CALLBACK_MAX_BODY_SIZE": 64 * 1024,
    # M-Pesa statement imports (back office and mpesa_import_statement): a larger file, or one
    # with more lines, is refused with a message; a month of a busy PayBill fits.
    "STATEMENT_MAX_BYTES": 10 * 1024 * 1024,
    "STATEMENT_MAX_ROWS": 50_000,
    # A transaction still "unknown" this many seconds after it was recorded is reported to the
    # finance managers (admin index, mpesa_reconcile's e-mail digest): reconciliation could not
    # settle it.
    "UNKNOWN_ALERT_AFTER": 60 * 60,
    # Pull Transactions registration: the Safaricom number (07XXXXXXXX or 2547XXXXXXXX) that
    # receives Daraja's notices about it (mpesa_register_urls --pull).
    "PULL_NOMINATED_NUMBER": "",
}

# Values that tell a human left a template untouched; treated as missing.
PLACEHOLDER_VALUES = frozenset({"replace-me", "changeme", "change-me", "xxx", "todo"})

# Settings each operation needs, by name, so one error can list every missing value at once.
REQUIRED_FOR_STK = ("CONSUMER_KEY", "CONSUMER_SECRET", "SHORTCODE", "PASSKEY", "CALLBACK_BASE_URL")


def is_missing(value: Any) -> bool:
    """True for an unset value or an untouched placeholder from .env.example."""
    if value is None:
        return True
    text = str(value).strip()
    return not text or text.lower() in PLACEHOLDER_VALUES


class PaymentsSettings:
    """Attribute access to the merged settings, cached until ``reload()``."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._cache: dict[str, Any] | None = None

    @property
    def _merged(self) -> dict[str, Any]:
        if self._cache is None:
            user = getattr(settings, "PAYMENTS", {}) or {}
            unknown = sorted(set(user) - set(self.defaults))
            if unknown:
                raise ImproperlyConfigured(f"Unknown PAYMENTS settings: {', '.join(unknown)}")
            self._cache = {**self.defaults, **user}
        return self._cache

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.defaults:
            raise AttributeError(f"Invalid PAYMENTS setting: {name!r}")
        return self._merged[name]

    def missing(self, names: tuple[str, ...] | list[str]) -> list[str]:
        """The names among ``names`` that are unset or placeholders."""
        return [name for name in names if is_missing(getattr(self, name))]

    def require(self, names: tuple[str, ...] | list[str]) -> None:
        """Raise one ImproperlyConfigured that names every missing setting."""
        missing = self.missing(names)
        if missing:
            raise ImproperlyConfigured(
                "Missing M-Pesa settings: "
                + ", ".join(f"PAYMENTS['{n}'] (env MPESA_{n})" for n in missing)
            )

    def reload(self) -> None:
        self._cache = None


payments_settings = PaymentsSettings(DEFAULTS)


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "PAYMENTS":
        payments_settings.reload()


setting_changed.connect(_reload_on_change)
