"""Trend metrics of a cube: weekly metrics, KPI cards, top movers, the weekly view, the
significance tests they use and root-cause attribution."""
