"""Django settings for mpesa_site: the only module that reads the environment.

Values come from the process environment, or from a `.env` file beside manage.py when present.
Every variable is listed, with a comment, in `.env.example`.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# A development key is only acceptable while DEBUG is on; a deployment must bring its own.
_DEV_SECRET_KEY = "django-insecure-development-only-key-do-not-deploy"  # noqa: S105 (DEBUG only)
_PLACEHOLDER_SECRET_KEYS = {"", "change-me", "changeme", "replace-me", _DEV_SECRET_KEY}
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if SECRET_KEY in _PLACEHOLDER_SECRET_KEYS or SECRET_KEY.startswith("django-insecure"):
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is missing or a placeholder while DJANGO_DEBUG is off. Set it to "
            'a long random value, e.g. python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )
    SECRET_KEY = SECRET_KEY or _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
# Browsers (the Flutter web build) may call the API; nothing else needs CORS.
CORS_URLS_REGEX = r"^/api/.*$"

INSTALLED_APPS = [
    # Before the admin: its admin/index.html (the index with the payments dashboard) wins.
    "payments",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simulator",
]

MIDDLEWARE = [
    # /healthz and /readyz: answered first, whatever the Host header, never logged.
    "mpesa_site.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, Swagger UI) from STATIC_ROOT, compressed, cached forever by name.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # One log line per request; X-Request-ID accepted or made, and echoed.
    "payments.middleware.RequestLogMiddleware",
    # A NUL in a query string would reach the database from any filter: 400 first.
    "payments.middleware.UnstorableQueryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mpesa_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mpesa_site.wsgi.application"
ASGI_APPLICATION = "mpesa_site.asgi.application"

# An empty value means the default: a SQLite file beside manage.py, whatever the working directory.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
# Callback views store the raw body before processing, so requests are not wrapped in one
# transaction: services open the short transactions they need.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections outside DEBUG (a new connection per request costs more than most of
# our requests), checked before each reuse so that a database restart costs no request.
DATABASES["default"]["CONN_MAX_AGE"] = int(
    env.str("DATABASE_CONN_MAX_AGE", default="") or (0 if DEBUG else 60)
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The development server, its simulator thread and the callbacks it posts write at once. A
    # transaction that reads before it writes (select_for_update is a no-op here) would fail
    # with "database is locked" at once instead of waiting: take the write lock at BEGIN.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # An unreachable server fails a request (and /readyz) in seconds rather than hanging it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)

CACHES = {"default": env.cache_url_config(env.str("CACHE_URL", default="") or "locmemcache://")}
if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    # The same for an unreachable Redis: it holds the throttles and the OAuth token.
    _redis_options = CACHES["default"].setdefault("OPTIONS", {})
    _redis_options.setdefault("socket_connect_timeout", 5)
    _redis_options.setdefault("socket_timeout", 5)
    # Django's backend, reusing its redis-py client (mpesa_site/cache.py).
    CACHES["default"]["BACKEND"] = "mpesa_site.cache.RedisCache"

# E-mail carries mpesa_reconcile's alert digest to the Finance managers. Empty: printed on the
# console (development); e.g. smtp+tls://user:password@smtp.example.com:587 in production.
vars().update(
    {
        name: value
        for name, value in env.email_url_config(
            env.str("EMAIL_URL", default="") or "consolemail://"
        ).items()
        if value not in (None, "")
    }
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="") or "webmaster@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The digest is sent inside the database transaction that records it as sent: never wait long.
EMAIL_TIMEOUT = 10

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "Africa/Nairobi"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic writes and WhiteNoise serves from (make serve collects there).
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default="") or BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Outside DEBUG: hashed names (cached forever) and gzip copies, made by collectstatic. In
    # DEBUG, files come from the apps as they are, with no collectstatic needed.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Deployment hardening: on unless DEBUG. Behind a TLS-terminating proxy, set
# DJANGO_SECURE_PROXY_SSL_HEADER=true so Django trusts X-Forwarded-Proto. An empty value keeps
# the default, so .env.example can list these without deciding them.
SECURE_SSL_REDIRECT = (
    env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
    if env.str("DJANGO_SECURE_SSL_REDIRECT", default="")
    else not DEBUG
)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = int(
    env.str("DJANGO_SECURE_HSTS_SECONDS", default="") or (0 if DEBUG else 31536000)
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "payments.api.authentication.CompiledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "payments.api.exceptions.api_exception_handler",
    # Proxies in front of this server; throttles, the admin login limits and the callback
    # allowlist trust that many X-Forwarded-For hops and no more (0: the connecting address,
    # which a client cannot forge). payments/network.py reads it.
    "NUM_PROXIES": int(env.str("DJANGO_NUM_PROXIES", default="") or 0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "M-Pesa payments API",
    "DESCRIPTION": "STK Push, payment status and transaction history for the mobile app. "
    "Authenticate with `Authorization: Token <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["payments.api.schema.document_paths_without_trailing_slash"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "payments.api.schema.document_blank_query_parameters",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TransactionStatusEnum": "payments.enums.TransactionStatus",
        "InquiryStatusEnum": "payments.enums.InquiryStatus",
    },
}


def _http_timeout(raw: str) -> tuple[float, float]:
    """MPESA_HTTP_TIMEOUT is "READ" or "CONNECT,READ" in seconds."""
    parts = [float(p) for p in raw.split(",") if p.strip()]
    if len(parts) == 1:
        return (min(5.0, parts[0]), parts[0])
    if len(parts) == 2:
        return (parts[0], parts[1])
    raise ImproperlyConfigured('MPESA_HTTP_TIMEOUT must be "READ" or "CONNECT,READ" seconds')


MPESA_ENVIRONMENT = env.str("MPESA_ENVIRONMENT", default="sandbox")
SIMULATOR_MODE = MPESA_ENVIRONMENT == "simulator"
# In simulator mode this server is both Daraja and the callback target; make run sets the port.
SIMULATOR_ORIGIN = (
    env.str("MPESA_SIMULATOR_ORIGIN", default="") or "http://127.0.0.1:8000"
).rstrip("/")
# Values that work against the built-in simulator, used only in simulator mode when unset, and
# only with DEBUG on: they are public (here), so a server without DEBUG that took them would let
# anyone post a C2B confirmation with the known secret. payments.E010 refuses that server anyway.
_SIMULATOR_DEFAULTS = {
    "BASE_URL": f"{SIMULATOR_ORIGIN}/simulator/daraja",
    "CONSUMER_KEY": "simulator-consumer-key",
    "CONSUMER_SECRET": "simulator-consumer-secret",
    "SHORTCODE": "174379",
    "PASSKEY": "simulator-passkey",
    "B2C_SHORTCODE": "600992",
    "INITIATOR_NAME": "simulator-initiator",
    "SECURITY_CREDENTIAL": "simulator-security-credential",
    "CALLBACK_BASE_URL": SIMULATOR_ORIGIN,
    "CALLBACK_SECRET": "simulator-callback-secret-0123456789",
}


def _mpesa(name: str) -> str:
    """MPESA_<name>, or on a DEBUG server in simulator mode the simulator's value when unset or
    a placeholder."""
    value = env.str(f"MPESA_{name}", default="")
    if SIMULATOR_MODE and DEBUG and value.strip().lower() in ("", "replace-me"):
        return _SIMULATOR_DEFAULTS.get(name, value)
    return value


PAYMENTS = {
    "ENVIRONMENT": MPESA_ENVIRONMENT,
    "BASE_URL": _mpesa("BASE_URL"),
    "CONSUMER_KEY": _mpesa("CONSUMER_KEY"),
    "CONSUMER_SECRET": _mpesa("CONSUMER_SECRET"),
    "SHORTCODE": _mpesa("SHORTCODE"),
    "PASSKEY": _mpesa("PASSKEY"),
    "STK_TRANSACTION_TYPE": env.str("MPESA_STK_TRANSACTION_TYPE", default="CustomerPayBillOnline"),
    "TILL_NUMBER": _mpesa("TILL_NUMBER"),
    "B2C_SHORTCODE": _mpesa("B2C_SHORTCODE"),
    "INITIATOR_NAME": _mpesa("INITIATOR_NAME"),
    "INITIATOR_PASSWORD": _mpesa("INITIATOR_PASSWORD"),
    "CERTIFICATE_PATH": _mpesa("CERTIFICATE_PATH"),
    "SECURITY_CREDENTIAL": _mpesa("SECURITY_CREDENTIAL"),
    "CALLBACK_BASE_URL": _mpesa("CALLBACK_BASE_URL"),
    "CALLBACK_SECRET": _mpesa("CALLBACK_SECRET"),
    "HTTP_TIMEOUT": _http_timeout(env.str("MPESA_HTTP_TIMEOUT", default="5,30")),
    "HTTP_DEADLINE": float(env.str("MPESA_HTTP_DEADLINE", default="") or 45),
    "STK_RATE_PER_PHONE": env.str("MPESA_STK_RATE_PER_PHONE", default="") or "5/min",
    "STK_RATE_PER_USER": env.str("MPESA_STK_RATE_PER_USER", default="") or "30/min",
    "CALLBACK_ALLOWED_NETWORKS": env.list("MPESA_CALLBACK_ALLOWED_NETWORKS", default=[]),
    "ADMIN_LOGIN_FAILURES_PER_USERNAME": int(
        env.str("MPESA_ADMIN_LOGIN_FAILURES_PER_USERNAME", default="") or 5
    ),
    "ADMIN_LOGIN_FAILURES_PER_ADDRESS": int(
        env.str("MPESA_ADMIN_LOGIN_FAILURES_PER_ADDRESS", default="") or 20
    ),
    "ADMIN_LOGIN_LOCKOUT": int(env.str("MPESA_ADMIN_LOGIN_LOCKOUT", default="") or 15 * 60),
    "UNKNOWN_ALERT_AFTER": int(env.str("MPESA_UNKNOWN_ALERT_AFTER", default="") or 60 * 60),
    "PULL_NOMINATED_NUMBER": env.str("MPESA_PULL_NOMINATED_NUMBER", default=""),
}

DARAJA_SIMULATOR = {
    # Seconds before a simulated result is posted back, and before a "late" one is.
    "CALLBACK_DELAY": float(env.str("MPESA_SIMULATOR_CALLBACK_DELAY", default="") or 3),
    "LATE_DELAY": float(env.str("MPESA_SIMULATOR_LATE_DELAY", default="") or 20),
    "TOKEN_LIFETIME": 3599,
}

# One JSON object a line (for a log shipper) or plain text (for a person); plain in DEBUG.
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="") or ("plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f'DJANGO_LOG_FORMAT must be "json" or "plain", not {LOG_FORMAT!r}')

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # The request id, user and transaction a line belongs to (payments/logs.py).
        "log_context": {"()": "payments.logs.LogContextFilter"},
        # Callback paths carry secrets (payments/redaction.py): every handler that prints
        # redacts them.
        "callback_secrets": {"()": "payments.redaction.CallbackSecretFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "payments.logs.JsonFormatter"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["log_context", "callback_secrets"],
        },
        # runserver's access lines, formatted as Django formats them.
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server" if LOG_FORMAT == "plain" else "json",
            "filters": ["log_context", "callback_secrets"],
        },
    },
    "loggers": {
        # Django's DEFAULT_LOGGING gives these two loggers handlers of their own, which would print
        # paths unfiltered (a console handler in DEBUG, runserver's access log; mail_admins mails
        # the whole request, and ADMINS is never set here). Naming them here replaces those
        # handlers: django's records go to the root's console, the access lines to our own.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="") or "INFO"},
}
