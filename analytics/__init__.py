"""Lookout's analytics: everything the pages show, computed; never imports Streamlit.

One package per job, each importing only the ones before it in this list (checked by
``tests/test_layers.py``):

- :mod:`analytics.core`: the tables, connecting, filters, the calendar, slice keys;
- :mod:`analytics.access`: roles, accounts, the audit trail, masking, suppression;
- :mod:`analytics.sources`: reading data (snapshot, pushdown, case reads, search, import);
- :mod:`analytics.metrics`: weekly metrics, KPIs, movers, tests, root cause;
- :mod:`analytics.present`: numbers and values in words, the chart style and figures;
- :mod:`analytics.detectors`: anomalies, emerging topics, rings, unusual accounts;
- :mod:`analytics.views`: one module per page, each function taking the viewer's role;
- :mod:`analytics.reports`: the weekly brief;
- :mod:`analytics.alerts`: stored incidents and their follow-up, escalations,
  subscriptions, the outbox and its channels, the watch run;
- :mod:`analytics.demo`: the demo data and its evaluation (only the CLI and tests reach it);
- :mod:`analytics.cli`: ``python -m analytics``.
"""
