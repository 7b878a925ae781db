"""Presenting numbers: words (formatting: numbers, changes, tests, dates, labels), the
chart style (theme) and figure builders, and spreadsheet-safe CSV."""
