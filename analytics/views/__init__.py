"""What each page shows, computed: one module per page, each function taking the viewer's role.

- :mod:`~analytics.views.overview`: the Overview page (row counts, date range, freshness);
- :mod:`~analytics.views.selection`: the global filters every page shares (the weeks with
  data, the filters a URL asks for, the focus week's end);
- :mod:`~analytics.views.trends`: the Weekly Trends page;
- :mod:`~analytics.views.anomalies` and :mod:`~analytics.views.feedback`: the Anomalies
  page (incidents, their evidence, verdicts and the alerts' precision);
- :mod:`~analytics.views.emerging`: the Emerging Threats page (topics, rings);
- :mod:`~analytics.views.cases`: the Case Explorer (the list a link asks for, an account);
- :mod:`~analytics.views.admin`: the Admin page (users, the audit log).

The Reports page reads :func:`analytics.reports.build_brief`, which builds on these
views. ``ui`` caches and draws what these functions return; they never import Streamlit.
"""
