"""Lookout's analytics: everything the pages show, computed; never imports Streamlit.

One package per job, imported in one direction (core <- access <- sources <- metrics <-
detectors <- views <- reports; present beside them; cli on top):

- :mod:`analytics.core`: the tables, connecting, filters, the calendar, slice keys;
- :mod:`analytics.access`: roles, accounts, the audit trail, masking, suppression;
- :mod:`analytics.sources`: reading data (snapshot, pushdown, case reads, search, import);
- :mod:`analytics.metrics`: weekly metrics, KPIs, movers, tests, root cause;
- :mod:`analytics.detectors`: anomalies, emerging topics, rings, unusual accounts;
- :mod:`analytics.views`: one module per page, each function taking the viewer's role;
- :mod:`analytics.reports`: the weekly brief; :mod:`analytics.present`: words and charts;
- :mod:`analytics.cli`: ``python -m analytics``; :mod:`analytics.demo`: the demo data and
  its evaluation (only the CLI and tests reach it).
"""
