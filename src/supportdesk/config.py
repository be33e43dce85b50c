"""Settings from the environment (prefix ``SUPPORTDESK_``) and a ``.env`` file.

Every setting has a default that works with no configuration at all: the embedded SQLite
database in the working directory and the business rules of DOMAIN.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import holidays
from pydantic import Field, SecretStr, StringConstraints, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from supportdesk.db_grants import role_name_problem
from supportdesk.domain.billing import BillingSettings
from supportdesk.domain.calendar import BusinessCalendar, WorkingRange
from supportdesk.domain.groups import Severity, SupportGroup
from supportdesk.domain.pricing import PriceList
from supportdesk.domain.sla import SlaTarget, SlaTargets

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./supportdesk.db"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY_YEARS_AROUND = 10

Ranges = Annotated[
    str,
    StringConstraints(
        pattern=r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}(\s*,\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2})*\s*$"
    ),
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTDESK_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    database_echo: bool = False
    database_app_role: str | None = Field(
        default=None,
        description=(
            "PostgreSQL: the service's own login role. `db upgrade`, run as the owner of "
            "the tables, grants it only what the service needs. None: one role for both."
        ),
    )
    rate_limit_requests: int = Field(
        default=1200,
        ge=0,
        le=10_000_000,
        description="Requests per API key per rate-limit window, over all workers (0: off).",
    )
    rate_limit_auth_failures: int = Field(
        default=20,
        ge=0,
        le=1_000_000,
        description="Failed authentications per client address per window (0: off).",
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=86_400)
    auth_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description=(
            "How long a worker remembers a key that authenticated (0: look it up on every "
            "request). A key revoked through the API stops working at once on the worker "
            "that revoked it and within this time on the others."
        ),
    )
    attachments_dir: Path = Path("./attachments")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: str = "info"
    auto_migrate: bool | None = Field(
        default=None,
        description="Apply migrations on `serve`; by default only on SQLite.",
    )

    attachment_max_bytes: dict[str, int] = Field(
        default_factory=lambda: {
            "screenshot": 20 * 1024**2,
            "log": 200 * 1024**2,
            "document": 50 * 1024**2,
            "database_backup": 8 * 1024**3,
        },
        description="largest upload per attachment kind, in bytes",
    )
    attachment_quota_bytes: int = Field(
        default=100 * 1024**3,
        ge=0,
        description="bytes of attachments a customer may keep over all its tickets (413 above)",
    )
    metrics_enabled: bool = True
    cors_origins: list[str] = Field(
        default_factory=list, description='browser origins allowed, e.g. ["https://desk.example"]'
    )
    max_page_size: int = Field(
        default=100, ge=10, le=1000, description="the largest ?limit= of every list"
    )
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    idempotency_retention_hours: int = Field(default=24, ge=24, le=24 * 30)

    # Business calendar of the desk (DOMAIN.md, "Business time").
    timezone: str = "Europe/Berlin"
    business_days: str = Field(default="mon,tue,wed,thu,fri", description="weekdays worked")
    business_hours: Ranges = Field(
        default="08:30-17:00", description="working ranges, e.g. 08:30-12:00,13:00-17:00"
    )
    holiday_country: str = "DE"
    holiday_state: str | None = Field(
        default=None, description="a federal state's holidays too, e.g. BY"
    )
    closed_dates: list[date] = Field(default_factory=list, description="extra closed dates")
    vendor_timezone: str = "America/New_York"
    vendor_business_hours: Ranges = "09:00-17:00"
    installation_hours: Ranges = "07:00-18:00"

    # Units and prices (DOMAIN.md, "Prepaid units").
    unit_minutes: int = Field(default=15, ge=1, le=240)
    minimum_billable_seconds: int | None = Field(default=None, ge=0)
    merge_gap_seconds: int | None = Field(default=None, ge=0)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    list_price: Decimal = Field(default=Decimal("30.00"), gt=0, max_digits=12, decimal_places=2)
    price_tiers: dict[int, Decimal] = Field(
        default_factory=lambda: {10: Decimal("28.00"), 20: Decimal("26.00"), 50: Decimal("24.00")},
        description='package size from which a unit price applies, e.g. {"10": "28.00"}',
    )
    warning_levels: list[int] = Field(default_factory=lambda: [4])
    session_code_minutes: int = Field(default=10, ge=1, le=120)
    statement_day: int = Field(
        default=1,
        ge=0,
        le=28,
        description="day of the month (desk time) on which last month's statements are "
        "issued; 0: never",
    )

    # Webhooks and the dispatcher that delivers them (inside the service by default).
    webhooks_allow_private: bool = Field(
        default=False, description="allow webhook URLs on private and loopback addresses"
    )
    webhook_dispatcher_enabled: bool = True
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        lt=60,
        description=(
            "How long a dispatcher's hold on a receiving URL and its jobs lasts without "
            "renewal; renewed every third of it while the dispatcher works, so a delivery "
            "may take longer. The URLs and jobs of a dispatcher that died are taken over "
            "within this time."
        ),
    )
    webhook_retry_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0, le=86400)
    webhook_give_up_hours: float = Field(default=24.0, gt=0, le=24 * 30)

    # E-mail notifications (supportdesk.notifications), off while no SMTP host is set.
    smtp_host: str | None = Field(
        default=None, description="mail server; none: no e-mail notifications are sent"
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls", description="none, starttls (port 587) or tls (implicit, port 465)"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    mail_from: str = Field(
        default="Support <support@localhost>",
        min_length=3,
        max_length=320,
        description="the sender of every notification",
    )
    mail_poll_seconds: float = Field(default=2.0, gt=0, le=60)
    mail_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        lt=60,
        description=(
            "How long a mailer's claim on a message lasts without renewal; renewed every "
            "third of it while the mailer sends, so a send may take longer. The messages "
            "of a mailer that died are taken over within this time."
        ),
    )
    mail_retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    mail_retry_max_seconds: float = Field(default=3600.0, gt=0, le=86400)
    mail_give_up_hours: float = Field(default=72.0, gt=0, le=24 * 30)

    # First-response targets (DOMAIN.md, "Service-level targets").
    sla_prompt_hours: Decimal = Field(default=Decimal(4), gt=0, description="contract, premium")
    sla_critical_hours: Decimal = Field(default=Decimal(1), gt=0, description="their critical")
    sla_standard_days: Decimal = Field(default=Decimal(2), gt=0, description="standard group")
    sla_at_risk_percent: int = Field(default=75, ge=1, le=99)

    @field_validator("database_app_role", mode="before")
    @classmethod
    def _role_name(cls, value: object) -> object:
        if value == "":  # SUPPORTDESK_DATABASE_APP_ROLE= means unset
            return None
        problem = role_name_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("business_days")
    @classmethod
    def _weekdays(cls, value: str) -> str:
        days = [d.strip().lower() for d in value.split(",") if d.strip()]
        if not days or any(d not in WEEKDAYS for d in days):
            raise ValueError(f"business_days takes names from {', '.join(WEEKDAYS)}")
        return ",".join(days)

    @field_validator("warning_levels")
    @classmethod
    def _levels(cls, value: list[int]) -> list[int]:
        if any(level < 0 for level in value):
            raise ValueError("warning levels are unit counts, zero or more")
        return sorted(set(value), reverse=True)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


@lru_cache
def get_settings() -> Settings:
    return Settings()


@dataclass(frozen=True)
class BusinessRules:
    """The configuration objects the domain core takes, built once from the settings."""

    calendar: BusinessCalendar
    vendor_calendar: BusinessCalendar
    installation_calendar: BusinessCalendar
    sla_targets: SlaTargets
    at_risk_ratio: Decimal
    billing: BillingSettings
    price_list: PriceList
    warning_levels: tuple[int, ...]
    session_code_lifetime: timedelta
    # The day of the month last month's statements are issued on (0: never).
    statement_day: int = 0


def _weekly(time_zone: str, days: str, ranges: str, closed: frozenset[date]) -> BusinessCalendar:
    worked = set(days.split(","))
    day_ranges = WorkingRange.parse_many(ranges)
    week = tuple(day_ranges if name in worked else () for name in WEEKDAYS)
    return BusinessCalendar(time_zone, week, closed)


def public_holidays(country: str, state: str | None, around: date) -> frozenset[date]:
    """Public holidays (nation-wide, plus a federal state's when given) for the years
    around ``around``, from the ``holidays`` package."""
    years = range(around.year - HOLIDAY_YEARS_AROUND, around.year + HOLIDAY_YEARS_AROUND + 1)
    return frozenset(holidays.country_holidays(country, subdiv=state, years=years).keys())


def build_rules(settings: Settings, today: date | None = None) -> BusinessRules:
    today = today or date.today()
    closed = public_holidays(settings.holiday_country, settings.holiday_state, today)
    closed |= frozenset(settings.closed_dates)
    prompt = SlaTarget.hours(settings.sla_prompt_hours)
    critical = SlaTarget.hours(settings.sla_critical_hours)
    targets = SlaTargets.by_group(
        {
            SupportGroup.CONTRACT: prompt,
            SupportGroup.PREMIUM: prompt,
            SupportGroup.STANDARD: SlaTarget.days(settings.sla_standard_days),
        },
        {
            (SupportGroup.CONTRACT, Severity.CRITICAL): critical,
            (SupportGroup.PREMIUM, Severity.CRITICAL): critical,
        },
    )
    seconds = settings.minimum_billable_seconds
    gap = settings.merge_gap_seconds
    return BusinessRules(
        calendar=_weekly(
            settings.timezone, settings.business_days, settings.business_hours, closed
        ),
        vendor_calendar=_weekly(
            settings.vendor_timezone,
            "mon,tue,wed,thu,fri",
            settings.vendor_business_hours,
            public_holidays("US", None, today),
        ),
        installation_calendar=_weekly(
            settings.timezone, "mon,tue,wed,thu,fri", settings.installation_hours, closed
        ),
        sla_targets=targets,
        at_risk_ratio=Decimal(settings.sla_at_risk_percent) / 100,
        billing=BillingSettings(
            unit_length=timedelta(minutes=settings.unit_minutes),
            minimum_billable=timedelta(seconds=seconds) if seconds is not None else None,
            merge_gap=timedelta(seconds=gap) if gap is not None else None,
        ),
        price_list=PriceList.from_mapping(
            settings.list_price, settings.price_tiers, settings.currency
        ),
        warning_levels=tuple(settings.warning_levels),
        session_code_lifetime=timedelta(minutes=settings.session_code_minutes),
        statement_day=settings.statement_day,
    )
