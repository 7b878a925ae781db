"""Realistic demo data with ground truth, generated vectorised.

The demo is a two-year (by default) history of a healthcare marketplace:
patients, providers and practices across US states, their events (the exposure)
and the Trust & Safety cases raised about them. It has growth, weekly
seasonality, US holidays, Poisson noise, reporting delays, category mixes that
differ by region and platform, long-tailed handling times, SLA breaches and
appeals, and five injected scenarios recorded in a ground-truth manifest.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``, in a
fixed order, so the same seed and end date give the same data.

The window is the ``days`` whole days that end at midnight (UTC) at the start
of ``end``: with ``end=2026-11-24`` the newest event is on 2026-11-23.

Modules, in the order the generator uses them:

- :mod:`~analytics.demo.tuning`: the scales and the mixes and rates every draw uses;
- :mod:`~analytics.demo.calendar`: the window's days, holidays and the scenarios' dates;
- :mod:`~analytics.demo.sampling`: the vectorised draws everything is built from;
- :mod:`~analytics.demo.accounts`, :mod:`~analytics.demo.scenarios`,
  :mod:`~analytics.demo.cases` (with :mod:`~analytics.demo.narratives`, the
  descriptions) and :mod:`~analytics.demo.events`: the tables;
- :mod:`~analytics.demo.dataset`: :func:`generate`, the whole data set in memory;
- :mod:`~analytics.demo.seed`: :func:`seed_database`, writing it into a database;
- :mod:`~analytics.demo.evaluation`: the detectors scored against the ground truth.

Only the CLI (and tests and benchmarks) import this package; the app never does.
"""

from __future__ import annotations

from analytics.demo.calendar import scenario_dates
from analytics.demo.dataset import DemoData, generate
from analytics.demo.seed import SeedRefused, database_state, seed_database
from analytics.demo.tuning import SCALES, Scale

__all__ = [
    "SCALES",
    "Scale",
    "DemoData",
    "generate",
    "scenario_dates",
    "seed_database",
    "database_state",
    "SeedRefused",
]
