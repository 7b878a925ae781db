"""Entry point for ``python -m analytics``."""

from analytics.cli import main

main()
