"""Runtime settings, read once from the environment.

Everything that differs between a developer's laptop, CI and production is an environment
variable, so the same checkout runs anywhere without editing files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"environment variable {name} must be an integer, got {raw!r}") from exc


def _seconds(name: str, default: float) -> float:
    """A duration in seconds (fractions allowed); 0 means no limit where PostgreSQL reads it so."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SystemExit(f"environment variable {name} must be a number of seconds, got {raw!r}") from exc
    if not value >= 0 or value == float("inf"):
        raise SystemExit(f"environment variable {name} must be a finite number of seconds >= 0, got {raw!r}")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"environment variable {name} must be on or off (1/0, true/false), got {raw!r}")


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    issuer: str
    token_ttl_seconds: int
    settlement_currency: str
    key_encryption_key: str | None
    points_expiry_months: int
    points_expiry_mode: str
    db_pool_size: int
    db_pool_overflow: int
    db_pool_timeout_seconds: float
    db_connect_timeout_seconds: float
    db_statement_timeout_seconds: float
    db_command_statement_timeout_seconds: float
    db_idle_in_transaction_timeout_seconds: float
    db_client_check_interval_seconds: float
    shutdown_grace_seconds: float
    max_query_depth: int
    max_aliases: int
    max_tokens: int
    max_page_size: int
    max_query_cost: int
    query_cost_partners: int  # the coalition size the cost limit sizes per-partner lists for
    revocation_cache_seconds: int
    partner_cache_seconds: int
    member_cache_seconds: int
    # Tiers (services/engagement): qualifying points count over this many months; a member keeps
    # their tier until the anniversary plus this grace before a downgrade.
    tier_window_months: int
    tier_grace_days: int
    # Referrals (services/engagement/referrals.py): coalition-issued points paid to the referrer
    # once the referred member's first purchase is available; 0 pays none.
    referral_bonus_points: int
    # What one member may give other members (transferPoints), in points per day and per month
    # (UTC days and calendar months).
    transfer_daily_limit_points: int
    transfer_monthly_limit_points: int
    member_miss_limit: int
    member_miss_window_seconds: int
    login_failures_per_username: int
    login_failures_per_address: int
    login_failure_window_seconds: int
    graphql_ide: bool  # GraphiQL at GET /graphql for a browser; for development, off by default
    # Where members' mail goes (shared/mail.py): with no SMTP URL, .eml files under mail_dir.
    smtp_url: str | None
    mail_from: str
    mail_dir: Path
    member_app_client_id: str | None  # the public OAuth client the web app at /app logs in as
    # "production" or "development" (COALITION_ENV). Production unless told otherwise, or running on
    # the embedded PostgreSQL of a laptop: development relaxes what must never be relaxed in
    # production (webhook endpoints on http://127.0.0.1).
    environment: str
    # Webhooks (services/notifications): a receiver has this long to answer a delivery, and a
    # delivery is retried with backoff for this many hours before it is dead-lettered.
    webhook_timeout_seconds: float
    webhook_retry_hours: int

    @property
    def production(self) -> bool:
        return self.environment != "development"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    data_dir = Path(os.environ.get("COALITION_DATA_DIR") or PROJECT_ROOT / ".coalition")
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    return Settings(
        database_url=os.environ.get("DATABASE_URL") or None,
        data_dir=data_dir,
        issuer=os.environ.get("OAUTH_ISSUER", f"http://{host}:{port}").rstrip("/"),
        token_ttl_seconds=_int("TOKEN_TTL_SECONDS", 900),
        settlement_currency=os.environ.get("SETTLEMENT_CURRENCY", "EUR"),
        key_encryption_key=os.environ.get("KEY_ENCRYPTION_KEY") or None,
        points_expiry_months=_int("POINTS_EXPIRY_MONTHS", 24),
        points_expiry_mode=os.environ.get("POINTS_EXPIRY_MODE", "PER_LOT"),
        db_pool_size=_int("DB_POOL_SIZE", 20),
        db_pool_overflow=_int("DB_POOL_OVERFLOW", 0),
        # Timeouts: what each bounds and why these defaults is in docs/decisions.md ("Timeouts").
        db_pool_timeout_seconds=_seconds("DB_POOL_TIMEOUT_SECONDS", 10),
        db_connect_timeout_seconds=_seconds("DB_CONNECT_TIMEOUT_SECONDS", 5),
        db_statement_timeout_seconds=_seconds("DB_STATEMENT_TIMEOUT_SECONDS", 30),
        db_command_statement_timeout_seconds=_seconds("DB_COMMAND_STATEMENT_TIMEOUT_SECONDS", 3600),
        db_idle_in_transaction_timeout_seconds=_seconds("DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", 60),
        db_client_check_interval_seconds=_seconds("DB_CLIENT_CHECK_INTERVAL_SECONDS", 1),
        shutdown_grace_seconds=_seconds("SHUTDOWN_GRACE_SECONDS", 20),
        max_query_depth=_int("MAX_QUERY_DEPTH", 10),
        max_aliases=_int("MAX_ALIASES", 15),
        max_tokens=_int("MAX_TOKENS", 2000),
        max_page_size=_int("MAX_PAGE_SIZE", 100),
        max_query_cost=_int("MAX_QUERY_COST", 5000),
        query_cost_partners=_int("QUERY_COST_PARTNERS", 50),
        revocation_cache_seconds=_int("REVOCATION_CACHE_SECONDS", 1),
        partner_cache_seconds=_int("PARTNER_CACHE_SECONDS", 5),
        member_cache_seconds=_int("MEMBER_CACHE_SECONDS", 300),
        tier_window_months=_int("TIER_WINDOW_MONTHS", 12),
        tier_grace_days=_int("TIER_GRACE_DAYS", 30),
        referral_bonus_points=_int("REFERRAL_BONUS_POINTS", 500),
        transfer_daily_limit_points=_int("TRANSFER_DAILY_LIMIT_POINTS", 10_000),
        transfer_monthly_limit_points=_int("TRANSFER_MONTHLY_LIMIT_POINTS", 50_000),
        # A partner client may get this many MEMBER_NOT_FOUND answers per window before every
        # lookup by number is refused (RATE_LIMITED) until the window has slid past them.
        member_miss_limit=_int("MEMBER_MISS_LIMIT", 30),
        member_miss_window_seconds=_int("MEMBER_MISS_WINDOW_SECONDS", 60),
        # Failed member sign-ins allowed per username and per client address within the window,
        # before that username or address is refused (429) until the window slides past them.
        login_failures_per_username=_int("LOGIN_FAILURES_PER_USERNAME", 5),
        login_failures_per_address=_int("LOGIN_FAILURES_PER_ADDRESS", 50),
        login_failure_window_seconds=_int("LOGIN_FAILURE_WINDOW_SECONDS", 900),
        graphql_ide=_flag("GRAPHQL_IDE", False),
        smtp_url=os.environ.get("SMTP_URL") or None,
        mail_from=os.environ.get("MAIL_FROM") or "Coalition <no-reply@coalition.localhost>",
        mail_dir=Path(os.environ.get("MAIL_DIR") or data_dir / "mail"),
        # Registered with `coalition clients create-app --redirect-uri <issuer>/app/`; unset, /app
        # says the gateway has no member app instead of offering a login that cannot work.
        member_app_client_id=os.environ.get("MEMBER_APP_CLIENT_ID") or None,
        environment=_environment(),
        webhook_timeout_seconds=_seconds("WEBHOOK_TIMEOUT_SECONDS", 10),
        webhook_retry_hours=_int("WEBHOOK_RETRY_HOURS", 24),
    )


def _environment() -> str:
    raw = (os.environ.get("COALITION_ENV") or "").strip().lower()
    if raw == "":
        return "development" if not os.environ.get("DATABASE_URL") else "production"
    if raw not in ("production", "development"):
        raise SystemExit(f"environment variable COALITION_ENV must be production or development, got {raw!r}")
    return raw
