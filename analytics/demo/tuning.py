"""The demo's fixed parameters: the scales and the mixes and rates every draw uses.

Changing a number here changes the data every seed gives. Shares and weekday profiles
are relative (each is normalised where it is used); durations are medians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.core.models import CaseSource, Category, EventKind, Platform, Resolution, Severity

__all__ = [
    "ACTIONS",
    "AUTOMATED",
    "CASE_MIX",
    "CATEGORY_REGION_TILT",
    "CATS",
    "EVENT_MIX",
    "FIRST_RESPONSE_H",
    "HOURS",
    "INTERNAL",
    "KINDS",
    "MODEL",
    "NO_VIOLATION",
    "PLATFORMS",
    "POP",
    "PROVIDER",
    "PROVIDER_SUBJECT",
    "REPORT_DELAY_DAYS",
    "RESOLUTIONS",
    "RESOLVE_D",
    "RULE",
    "SCALES",
    "SEVS",
    "SOURCES",
    "SOURCE_WEEK",
    "Scale",
    "TARGETED",
    "USER",
]


@dataclass(frozen=True)
class Scale:
    """Sizes of one demo scale (totals over the default 730 days)."""

    accounts: int
    events: int
    cases: int
    ring: int
    ato_attempts: int
    ato_victims: int
    scam_peak: float
    chunk_days: int


SCALES: dict[str, Scale] = {
    "small": Scale(5_000, 50_000, 6_000, 12, 600, 20, 4.0, 730),
    "medium": Scale(100_000, 2_000_000, 100_000, 40, 8_000, 240, 14.0, 183),
    "large": Scale(1_000_000, 20_000_000, 1_000_000, 150, 60_000, 1_500, 80.0, 61),
}

# Approximate state populations (millions): where accounts live.
POP = np.array(
    [
        5.0,
        0.7,
        7.2,
        3.0,
        39.5,
        5.8,
        3.6,
        1.0,
        0.7,
        21.5,
        10.7,
        1.5,
        1.8,
        12.8,
        6.8,
        3.2,
        2.9,
        4.5,
        4.7,
        1.4,
        6.2,
        7.0,
        10.1,
        5.7,
        3.0,
        6.2,
        1.1,
        2.0,
        3.1,
        1.4,
        9.3,
        2.1,
        20.2,
        10.4,
        0.8,
        11.8,
        4.0,
        4.2,
        13.0,
        1.1,
        5.1,
        0.9,
        6.9,
        29.1,
        3.3,
        0.6,
        8.6,
        7.7,
        1.8,
        5.9,
        0.6,
    ]
)
POP = POP / POP.sum()

# The vocabularies in code order: draws work on integer codes, labelled at the end.
KINDS = [k.value for k in EventKind]
CATS = [c.value for c in Category]
SOURCES = [s.value for s in CaseSource]
# Codes of the case sources.
USER, PROVIDER, RULE, MODEL, INTERNAL = (
    SOURCES.index(s)
    for s in ("user_report", "provider_report", "automated_rule", "ml_model", "internal_escalation")
)
AUTOMATED = [RULE, MODEL]
SEVS = [s.value for s in Severity]
PLATFORMS = [p.value for p in Platform]
RESOLUTIONS = [r.value for r in Resolution]

# Per event kind: share of base events, weekday profile (Mon..Sun), holiday factor,
# and who does it (patient / any / provider).
EVENT_MIX: dict[str, tuple[float, tuple[float, ...], float, str]] = {
    "login": (0.30, (1.05, 1.05, 1.05, 1.05, 1.0, 0.9, 0.9), 0.85, "any"),
    "login_failed": (0.03, (1.05, 1.05, 1.05, 1.05, 1.0, 0.9, 0.9), 0.85, "any"),
    "booking_created": (0.15, (1.25, 1.2, 1.2, 1.15, 1.1, 0.6, 0.5), 0.45, "patient"),
    "booking_cancelled": (0.03, (1.25, 1.2, 1.2, 1.15, 1.1, 0.6, 0.5), 0.5, "patient"),
    "no_show": (0.012, (1.2, 1.2, 1.2, 1.2, 1.1, 0.6, 0.5), 0.5, "patient"),
    "review_posted": (0.06, (1.0, 1.0, 1.0, 1.0, 0.95, 1.05, 1.0), 0.9, "patient"),
    "message_sent": (0.37, (1.15, 1.15, 1.1, 1.1, 1.05, 0.75, 0.7), 0.7, "any"),
    "profile_updated": (0.04, (1.2, 1.2, 1.2, 1.2, 1.1, 0.55, 0.55), 0.6, "provider"),
    "payment_failed": (0.008, (1.2, 1.2, 1.2, 1.1, 1.1, 0.7, 0.6), 0.6, "patient"),
}
# Event kinds aimed at an established provider (the target account).
TARGETED = {"booking_created", "booking_cancelled", "no_show", "review_posted"}

# UTC hour-of-day weights (US daytime falls in the UTC afternoon and evening).
HOURS = np.array(
    [
        6,
        5,
        4,
        3,
        2,
        1.5,
        1,
        1,
        1,
        1.2,
        1.5,
        2,
        3,
        4.5,
        6,
        7,
        7.5,
        7.5,
        7,
        7,
        7,
        7,
        6.5,
        6,
    ],
    dtype=float,
)
HOURS = HOURS / HOURS.sum()

# Per category: share of cases, source mix, severity mix, platform mix.
CASE_MIX: dict[str, tuple[float, tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "fake_review": (0.12, (0.25, 0.25, 0.15, 0.33, 0.02), (0.3, 0.5, 0.17, 0.03), (0.4, 0.3, 0.3)),
    "review_extortion": (0.03, (0.2, 0.65, 0.0, 0.1, 0.05), (0.1, 0.5, 0.3, 0.1), (0.5, 0.3, 0.2)),
    "harassment": (0.12, (0.7, 0.15, 0.03, 0.1, 0.02), (0.2, 0.45, 0.28, 0.07), (0.3, 0.4, 0.3)),
    "hate_speech": (0.04, (0.5, 0.1, 0.1, 0.28, 0.02), (0.1, 0.4, 0.4, 0.1), (0.35, 0.35, 0.3)),
    "spam": (0.14, (0.3, 0.1, 0.35, 0.25, 0.0), (0.65, 0.3, 0.05, 0.0), (0.3, 0.2, 0.5)),
    "fraudulent_booking": (
        0.07,
        (0.1, 0.45, 0.25, 0.17, 0.03),
        (0.2, 0.5, 0.25, 0.05),
        (0.6, 0.2, 0.2),
    ),
    "no_show_abuse": (
        0.08,
        (0.05, 0.6, 0.33, 0.02, 0.0),
        (0.6, 0.35, 0.05, 0.0),
        (0.4, 0.35, 0.25),
    ),
    "impersonation": (0.04, (0.55, 0.3, 0.0, 0.1, 0.05), (0.1, 0.4, 0.4, 0.1), (0.5, 0.3, 0.2)),
    "credential_misrepresentation": (
        0.03,
        (0.3, 0.2, 0.2, 0.0, 0.3),
        (0.05, 0.35, 0.45, 0.15),
        (0.8, 0.1, 0.1),
    ),
    "account_takeover": (
        0.05,
        (0.55, 0.0, 0.3, 0.13, 0.02),
        (0.0, 0.2, 0.55, 0.25),
        (0.5, 0.3, 0.2),
    ),
    "payment_fraud": (
        0.06,
        (0.35, 0.1, 0.25, 0.28, 0.02),
        (0.05, 0.35, 0.45, 0.15),
        (0.6, 0.2, 0.2),
    ),
    "health_info_exposure": (
        0.03,
        (0.6, 0.1, 0.05, 0.2, 0.05),
        (0.0, 0.2, 0.5, 0.3),
        (0.5, 0.3, 0.2),
    ),
    "off_platform_solicitation": (
        0.07,
        (0.45, 0.05, 0.2, 0.28, 0.02),
        (0.35, 0.5, 0.13, 0.02),
        (0.45, 0.3, 0.25),
    ),
    "other": (0.12, (0.75, 0.15, 0.02, 0.03, 0.05), (0.45, 0.45, 0.09, 0.01), (0.45, 0.3, 0.25)),
}
# Chance that a case's subject is a provider rather than a patient, by category (else 0).
PROVIDER_SUBJECT = {
    "credential_misrepresentation": 1.0,
    "off_platform_solicitation": 0.7,
    "impersonation": 0.2,
    "health_info_exposure": 0.3,
}
# Weekday profile of case intake by source: people report less at weekends.
SOURCE_WEEK = {
    "user_report": (1.08, 1.05, 1.05, 1.03, 1.0, 0.92, 0.87),
    "provider_report": (1.25, 1.2, 1.2, 1.15, 1.1, 0.55, 0.55),
    "automated_rule": (1, 1, 1, 1, 1, 1, 1),
    "ml_model": (1, 1, 1, 1, 1, 1, 1),
    "internal_escalation": (1.3, 1.3, 1.25, 1.25, 1.2, 0.35, 0.35),
}
# Mean delay (days, exponential) between the abuse and the case being opened, by source.
REPORT_DELAY_DAYS = {
    "user_report": 0.8,
    "provider_report": 1.5,
    "automated_rule": 0.02,
    "ml_model": 0.05,
    "internal_escalation": 2.0,
}
# Time to first response (median hours) and to resolution (median days) by severity.
FIRST_RESPONSE_H = {"low": 40.0, "medium": 16.0, "high": 4.0, "critical": 0.75}
RESOLVE_D = {"low": 2.0, "medium": 1.5, "high": 1.2, "critical": 0.7}
# Share of cases found not to be a violation, by source.
NO_VIOLATION = {
    "user_report": 0.45,
    "provider_report": 0.40,
    "automated_rule": 0.35,
    "ml_model": 0.22,
    "internal_escalation": 0.12,
}
# Action mix given a violation: warning, content_removed, suspended, banned, referred.
ACTIONS = {
    "low": (0.45, 0.45, 0.07, 0.01, 0.02),
    "medium": (0.30, 0.45, 0.18, 0.04, 0.03),
    "high": (0.10, 0.35, 0.35, 0.15, 0.05),
    "critical": (0.05, 0.20, 0.35, 0.30, 0.10),
}
# Spread (log-normal sigma) of each category's state-by-state tilt from the population.
CATEGORY_REGION_TILT = 0.35
