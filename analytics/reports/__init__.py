"""Weekly insight briefs: one week's numbers written up for leadership or for product.

:func:`build_brief` reads a week through the existing loaders and analytics
(:mod:`analytics.metrics.weekly`, :mod:`analytics.views.anomalies`,
:mod:`analytics.views.emerging`) and returns a :class:`Brief`: the week, the audience and
its sections, each a list of sentences that state the numbers behind them, tables and
plotly figures. :func:`render_html` writes it as one
self-contained HTML file (plotly.js inline once, no external resource of any kind) and
:func:`render_markdown` as a Markdown summary to paste into an email or a chat.

Two audiences:

- **leadership**: every number, with its test: KPIs against the previous week and the
  4-week mean, top movers with q-values, anomalies with their root cause, emerging
  topics (terms and counts), rings (ids, sizes), SLA, backlog, known events. No case
  text.
- **product**: aggregates of the whole platform only, for people outside T&S, under one
  guarantee: no combination of product outputs reveals a count below
  :data:`analytics.access.suppression.SUPPRESSION_THRESHOLD`
  (:mod:`analytics.reports.disclosure` explains each step).

Where each part lives:

- :mod:`analytics.reports.model`: :class:`Brief`, :class:`Section`, :class:`Table`, the
  audiences, and which weeks a product brief may cover (:func:`product_week`,
  :class:`IncompleteWeek`);
- :mod:`analytics.reports.build`: :func:`build_brief`, which assembles the sections;
- :mod:`analytics.reports.headline`: the Headline and Top movers sections;
- :mod:`analytics.reports.signals`: New anomalies, Emerging clusters and rings, Known
  events;
- :mod:`analytics.reports.service`: SLA and backlog;
- :mod:`analytics.reports.disclosure`: what the product brief may disclose (its
  guarantee), over :mod:`analytics.access.suppression` (small-cell suppression);
- :mod:`analytics.reports.render`: :func:`render_html`, :func:`render_markdown`;
- numbers, tests and dates in words: :mod:`analytics.present.formatting`.
"""

from __future__ import annotations

from analytics.reports.build import build_brief
from analytics.reports.model import (
    AUDIENCES,
    Audience,
    Brief,
    IncompleteWeek,
    Section,
    Table,
    product_week,
)
from analytics.reports.render import render_html, render_markdown

__all__ = [
    "AUDIENCES",
    "Audience",
    "Brief",
    "IncompleteWeek",
    "Section",
    "Table",
    "build_brief",
    "product_week",
    "render_html",
    "render_markdown",
]
