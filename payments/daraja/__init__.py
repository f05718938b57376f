"""A pure-Python client for Safaricom's M-Pesa Daraja API (stdlib, requests, cryptography).

Nothing here imports Django or the rest of ``payments``: the app plugs in through
``payments.gateway``.
"""

from .auth import MemoryTokenStore, TokenStore
from .callbacks import (
    AccountBalance,
    AccountBalanceResult,
    B2CResult,
    C2BNotification,
    ResultBody,
    ReversalResult,
    StkCallback,
    TransactionStatusResult,
    parse_account_balance_result,
    parse_account_balances,
    parse_b2c_result,
    parse_c2b_notification,
    parse_queue_timeout,
    parse_result,
    parse_reversal_result,
    parse_stk_callback,
    parse_transaction_status_result,
)
from .client import DarajaClient
from .config import DarajaConfig
from .errors import (
    DarajaAuthError,
    DarajaCallbackError,
    DarajaConfigurationError,
    DarajaConnectionError,
    DarajaError,
    DarajaRequestError,
    DarajaServerError,
    InvalidFieldError,
    InvalidPhoneNumberError,
)
from .phone import mask_phone_number, normalize_phone_number
from .responses import (
    AsyncRequestAcknowledgement,
    C2BResponse,
    MalformedPullRow,
    PulledTransaction,
    PullRegisterResponse,
    PullTransactionsPage,
    StkPushResponse,
    StkQueryResponse,
)

__all__ = [
    "AccountBalance",
    "AccountBalanceResult",
    "AsyncRequestAcknowledgement",
    "B2CResult",
    "C2BNotification",
    "C2BResponse",
    "DarajaAuthError",
    "DarajaCallbackError",
    "DarajaClient",
    "DarajaConfig",
    "DarajaConfigurationError",
    "DarajaConnectionError",
    "DarajaError",
    "DarajaRequestError",
    "DarajaServerError",
    "InvalidFieldError",
    "InvalidPhoneNumberError",
    "MalformedPullRow",
    "MemoryTokenStore",
    "PullRegisterResponse",
    "PullTransactionsPage",
    "PulledTransaction",
    "ResultBody",
    "ReversalResult",
    "StkCallback",
    "StkPushResponse",
    "StkQueryResponse",
    "TokenStore",
    "TransactionStatusResult",
    "mask_phone_number",
    "normalize_phone_number",
    "parse_account_balance_result",
    "parse_account_balances",
    "parse_b2c_result",
    "parse_c2b_notification",
    "parse_queue_timeout",
    "parse_result",
    "parse_reversal_result",
    "parse_stk_callback",
    "parse_transaction_status_result",
]
