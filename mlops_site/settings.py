"""Attest settings: one module, every deployment-specific value read from the environment.

Development (DEBUG=1) runs on the embedded defaults: SQLite under var/, Celery eager,
files on local disk. Production must set SECRET_KEY and ALLOWED_HOSTS; it fails fast otherwise.
"""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from mlops_site.common.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ATTEST_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-attest-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "mlops_site.admin_apps.AttestAdminConfig",  # django.contrib.admin with the dashboard site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "registry",
    "governance",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mlops_site.common.middleware.CorrelationIdMiddleware",
    "mlops_site.common.metrics.RequestLatencyMiddleware",
    "mlops_site.common.limits.BodyLimitMiddleware",
    "mlops_site.common.nul_guard.NulGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mlops_site.urls"
WSGI_APPLICATION = "mlops_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mlops_site" / "templates"],
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

# --- database -----------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'attest.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so a read-then-write transaction (the audit
        # chain head) never fails with SQLITE_BUSY_SNAPSHOT halfway through.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_PREPARED_STATEMENTS", True):
    # The ORM binds on the client and never prepares; the gate's hot reads (governance.hot_reads)
    # run through a server-binding cursor that psycopg prepares from its second execution on, so
    # PostgreSQL plans each of them once per connection, not once per request (this took more
    # than half of the database's CPU per gate request off: docs/BENCHMARKS.md, "Gate"). Set
    # DB_PREPARED_STATEMENTS=0 behind a pooler that cannot keep prepared statements
    # (PgBouncer in transaction mode before 1.21; docs/deploy.md).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2
ATOMIC_REQUESTS = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# An admin session ends after ATTEST_SESSION_TIMEOUT_MINUTES without a request (idle timeout: the
# expiry moves on with every request) and when the browser closes. ATTEST_SESSION_SECONDS, the
# older name, still works when the new one is unset.
SESSION_COOKIE_AGE = (env_int("ATTEST_SESSION_TIMEOUT_MINUTES", 0) * 60) or env_int("ATTEST_SESSION_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("ATTEST_SESSION_EXPIRE_AT_BROWSER_CLOSE", True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- files --------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
ATTEST_STORAGE_ROOT = Path(env_str("ATTEST_STORAGE_ROOT", str(VAR_DIR / "storage")))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ATTEST_STORAGE_ROOT), "file_permissions_mode": 0o640},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Every upload is hashed while it streams in and refused once it passes the limit.
FILE_UPLOAD_HANDLERS = ["registry.uploads.HashingUploadHandler"]
FILE_UPLOAD_TEMP_DIR = None
ATTEST_MAX_UPLOAD_BYTES = env_int("ATTEST_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ATTEST_MAX_JSON_BYTES", 5 * 1024 * 1024)

# The environments models are deployed to. The gate, deployments, approval requests, policies and
# drift monitors refuse any other name (400 `environment_unknown`), so that a typo or a capital letter
# ("Production") cannot reach an environment no policy covers (governance/environments.py).
ATTEST_ENVIRONMENTS = tuple(env_list("ATTEST_ENVIRONMENTS", ["dev", "shadow", "staging", "production"]))

# Types skops may instantiate when it loads a model. Comes from here, never from the upload.
ATTEST_SKOPS_TRUSTED_TYPES = env_list(
    "ATTEST_SKOPS_TRUSTED_TYPES",
    [
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._gb.GradientBoostingRegressor",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._tree.Tree",
        "sklearn.dummy.DummyRegressor",
        "sklearn.dummy.DummyClassifier",
        "sklearn.pipeline.Pipeline",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.impute._base.SimpleImputer",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.Interval",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "builtins.slice",
        "collections.OrderedDict",
    ],
)

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "audit-sequence": {
        "task": "governance.tasks.audit_log_sequence_task",
        "schedule": timedelta(seconds=env_int("ATTEST_AUDIT_SEQUENCE_SECONDS", 5)),
    },
    "audit-checkpoint": {
        "task": "governance.tasks.audit_checkpoint_create_task",
        "schedule": timedelta(minutes=env_int("ATTEST_CHECKPOINT_MINUTES", 15)),
    },
}

# --- audit log ----------------------------------------------------------------------------
# PEM-encoded Ed25519 private key. Unset in development: a key file under var/ is created.
ATTEST_SIGNING_KEY = env_str("ATTEST_SIGNING_KEY")
ATTEST_SIGNING_KEY_FILE = VAR_DIR / "signing_key.pem"
if ATTEST_SIGNING_KEY is None and not DEBUG and not env_bool("ATTEST_ALLOW_KEY_FILE", False):
    raise ImproperlyConfigured("ATTEST_SIGNING_KEY must be set when DEBUG is off.")
# A checkpoint is signed once this many events are past the last one (and on the beat schedule).
ATTEST_CHECKPOINT_EVERY_EVENTS = env_int("ATTEST_CHECKPOINT_EVERY_EVENTS", 1000)
# Optional external anchor: every signed checkpoint is also written here, outside the database.
ATTEST_CHECKPOINT_ANCHOR_DIR = env_str("ATTEST_CHECKPOINT_ANCHOR_DIR")

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "mlops_site.common.api.permissions.TokenScopePermission",
        "mlops_site.common.api.permissions.NotAuditorForWrites",
    ],
    "DEFAULT_PAGINATION_CLASS": "mlops_site.common.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mlops_site.common.api.exception_handler.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "mlops_site.common.api.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [
        "mlops_site.common.throttling.TokenRateThrottle",
        "mlops_site.common.throttling.UserRateThrottle",
        "mlops_site.common.throttling.AnonRateThrottle",
    ],
}
# Rate limits (docs/cli.md): per API token, per signed-in user, per anonymous address; DRF's
# "N/s|min|hour|day". Read per request (mlops_site/common/throttling.py). Counters are per
# process unless ATTEST_CACHE_URL names a shared Redis cache.
ATTEST_THROTTLE_RATES = {
    "token": env_str("ATTEST_THROTTLE_TOKEN_RATE", "3000/min"),
    "user": env_str("ATTEST_THROTTLE_USER_RATE", "3000/min"),
    "anon": env_str("ATTEST_THROTTLE_ANON_RATE", "300/min"),
}
ATTEST_CACHE_URL = env_str("ATTEST_CACHE_URL")
if ATTEST_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": ATTEST_CACHE_URL}}
# --- MLflow (governance/mlflow_import.py, docs/cli.md) --------------------------------------
# Aliases whose move to an unapproved version opens a critical alert ("*": every alias).
ATTEST_MLFLOW_GOVERNED_ALIASES = env_list("ATTEST_MLFLOW_GOVERNED_ALIASES", ["champion", "production", "prod", "live"])
# Defaults of manage.py import_mlflow and of the webhook receiver (POST /api/v1/mlflow/webhook/).
ATTEST_MLFLOW_TRACKING_URI = env_str("ATTEST_MLFLOW_TRACKING_URI")
ATTEST_MLFLOW_IMPORT_USER = env_str("ATTEST_MLFLOW_IMPORT_USER")
ATTEST_MLFLOW_TEAM = env_str("ATTEST_MLFLOW_TEAM")
ATTEST_MLFLOW_RISK_TIER = env_str("ATTEST_MLFLOW_RISK_TIER", "high")
# The secret given to MLflow when the webhook was created; unset: the receiver answers 503.
ATTEST_MLFLOW_WEBHOOK_SECRET = env_str("ATTEST_MLFLOW_WEBHOOK_SECRET")
# --- OIDC sign-in to the admin (governance/oidc.py); unset: password sign-in only ------------
ATTEST_OIDC_ISSUER = env_str("ATTEST_OIDC_ISSUER")
ATTEST_OIDC_CLIENT_ID = env_str("ATTEST_OIDC_CLIENT_ID")
ATTEST_OIDC_CLIENT_SECRET = env_str("ATTEST_OIDC_CLIENT_SECRET")
ATTEST_OIDC_SCOPES = env_str("ATTEST_OIDC_SCOPES", "openid email profile")
ATTEST_OIDC_USERNAME_CLAIM = env_str("ATTEST_OIDC_USERNAME_CLAIM", "preferred_username")
ATTEST_OIDC_ROLES_CLAIM = env_str("ATTEST_OIDC_ROLES_CLAIM", "groups")
# JSON object: the provider's group/role claim values -> Attest roles, e.g. {"mlops-validators": "model_validator"}
ATTEST_OIDC_ROLE_MAP = json.loads(env_str("ATTEST_OIDC_ROLE_MAP", "{}"))
# Per-endpoint body limits (bytes) for small JSON endpoints, below DATA_UPLOAD_MAX_MEMORY_SIZE.
_SMALL_JSON = env_int("ATTEST_SMALL_JSON_BYTES", 64 * 1024)
ATTEST_BODY_LIMITS = {
    "/api/v1/gate/": _SMALL_JSON,
    "/api/v1/deployments/": _SMALL_JSON,
    "/api/v1/approval-requests/": _SMALL_JSON,
    "/api/v1/mlflow/": 1024 * 1024,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Attest API",
    "DESCRIPTION": "ML governance and compliance audit service: registry, sign-off, gate, audit log.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Choice sets that share a field name across apps get stable, domain names in the schema.
    "ENUM_NAME_OVERRIDES": {
        "SignatureMeaningEnum": "governance.models.approvals.Signature.Meaning",
        "AlertSignatureMeaningEnum": "monitoring.models.AlertSignature.Meaning",
        "ApprovalRequestKindEnum": "governance.models.approvals.ApprovalRequest.Kind",
        "ComplianceAlertKindEnum": "monitoring.models.ComplianceAlert.Kind",
        "SeverityEnum": "monitoring.models.Severity",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "mlops_site.common.api.schema_hooks.error_responses_postprocess"],
}

# --- security (production) ----------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")  # json: mlops_site/common/jsonlog.py
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                   "json": {"()": "mlops_site.common.jsonlog.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": "json" if LOG_FORMAT == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- notifications (docs/notifications.md) -------------------------------------------------
# Approval-request events go to each webhook URL (signed) and by email to the people concerned.
ATTEST_WEBHOOK_URLS = env_list("ATTEST_WEBHOOK_URLS", [])
ATTEST_WEBHOOK_SECRET = env_str("ATTEST_WEBHOOK_SECRET")
if ATTEST_WEBHOOK_URLS and not ATTEST_WEBHOOK_SECRET:
    raise ImproperlyConfigured("ATTEST_WEBHOOK_URLS is set but ATTEST_WEBHOOK_SECRET is not; webhooks are signed.")
# Off: webhook hosts that resolve to loopback or private addresses are refused (SSRF rule).
ATTEST_WEBHOOK_ALLOW_PRIVATE = env_bool("ATTEST_WEBHOOK_ALLOW_PRIVATE", False)
# A PEM bundle to trust instead of the system's CAs (a receiver behind an internal CA).
ATTEST_WEBHOOK_CA_FILE = env_str("ATTEST_WEBHOOK_CA_FILE")
ATTEST_WEBHOOK_TIMEOUT_SECONDS = env_int("ATTEST_WEBHOOK_TIMEOUT_SECONDS", 10)
ATTEST_NOTIFY_MAX_RETRIES = env_int("ATTEST_NOTIFY_MAX_RETRIES", 8)
ATTEST_NOTIFY_RETRY_BACKOFF_MAX_SECONDS = env_int("ATTEST_NOTIFY_RETRY_BACKOFF_MAX_SECONDS", 900)
# Where emails point people (the admin page of the request).
ATTEST_SITE_URL = env_str("ATTEST_SITE_URL", "http://127.0.0.1:8000")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "attest@localhost")
# Approval requests past their policy's maximum age are expired on this schedule.
CELERY_BEAT_SCHEDULE["approval-expiry"] = {
    "task": "governance.tasks.approval_requests_expire_task",
    "schedule": timedelta(minutes=env_int("ATTEST_APPROVAL_EXPIRY_MINUTES", 15)),
}
# Drift monitors whose interval has passed check their unchecked batches (monitoring.tasks).
CELERY_BEAT_SCHEDULE["drift-checks"] = {
    "task": "monitoring.tasks.drift_checks_due_task",
    "schedule": timedelta(minutes=env_int("ATTEST_DRIFT_CHECK_MINUTES", 5)),
}
# Evaluations left `running` by a lost worker whose task never came back are failed (worker_lost).
ATTEST_EVALUATION_STALE_MINUTES = env_int("ATTEST_EVALUATION_STALE_MINUTES", 120)
CELERY_BEAT_SCHEDULE["evaluations-stale"] = {
    "task": "governance.tasks.evaluations_stale_fail_task",
    "schedule": timedelta(minutes=env_int("ATTEST_EVALUATION_STALE_CHECK_MINUTES", 15)),
}
# Transactional outbox (governance/outbox.py, docs/deploy.md): tasks a change asks for are rows
# published on commit; rows the broker did not take are relayed on this schedule (and by
# `manage.py relay_outbox`). After a failed publish a process leaves new rows to the relay for
# ATTEST_OUTBOX_PAUSE_SECONDS. A broker that refuses, or accepts and never answers, fails a
# publish within these timeouts (without a socket timeout a hung broker hangs the request).
ATTEST_OUTBOX_RELAY_SECONDS = env_int("ATTEST_OUTBOX_RELAY_SECONDS", 10)
ATTEST_OUTBOX_PAUSE_SECONDS = env_int("ATTEST_OUTBOX_PAUSE_SECONDS", ATTEST_OUTBOX_RELAY_SECONDS)
CELERY_BEAT_SCHEDULE["outbox-relay"] = {
    "task": "governance.tasks.outbox_relay_task",
    "schedule": timedelta(seconds=ATTEST_OUTBOX_RELAY_SECONDS),
}
# Sent rows are kept this long (to look into a late notification), then deleted hourly.
ATTEST_OUTBOX_KEEP_DAYS = env_int("ATTEST_OUTBOX_KEEP_DAYS", 7)
CELERY_BEAT_SCHEDULE["outbox-prune"] = {
    "task": "governance.tasks.outbox_prune_task",
    "schedule": timedelta(hours=1),
}
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("ATTEST_BROKER_CONNECT_TIMEOUT_SECONDS", 2)
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
                                   "socket_timeout": env_int("ATTEST_BROKER_SOCKET_TIMEOUT_SECONDS", 5)}
# Redis: a message left unacknowledged because its whole worker died is redelivered after this many
# seconds; a lost pool process is faster (its master rejects the message and it is requeued at once).
# docs/deploy.md, "Worker loss"; ATTEST_EVALUATION_STALE_MINUTES stays above it.
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = env_int("ATTEST_BROKER_VISIBILITY_TIMEOUT_SECONDS", 3600)
# --- Reports (docs/reports.md): SHAP sample bounds, proxy check, default bootstrap -------------
ATTEST_SHAP_MAX_ROWS = env_int("ATTEST_SHAP_MAX_ROWS", 1000)
ATTEST_SHAP_BACKGROUND_ROWS = env_int("ATTEST_SHAP_BACKGROUND_ROWS", 100)
ATTEST_SHAP_TOP_K = env_int("ATTEST_SHAP_TOP_K", 5)
ATTEST_PROXY_ASSOCIATION_MIN = float(env_str("ATTEST_PROXY_ASSOCIATION_MIN", "0.5"))
ATTEST_FAIRNESS_BOOTSTRAP = env_int("ATTEST_FAIRNESS_BOOTSTRAP", 200)
