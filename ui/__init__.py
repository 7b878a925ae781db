"""Streamlit glue: cached wrappers around ``analytics`` and shared page helpers.

Pages import from here and from ``analytics``; they never import SQLAlchemy.
"""
