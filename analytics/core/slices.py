"""Slice keys: the one text form of a slice (``category=spam|region=FL``, or ``all``).

A slice is a set of dimension values; anomalies, incidents, feedback and links name it
by its key. :func:`slice_key` writes one and :func:`parse_slice` reads one back.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ALL", "parse_slice", "slice_key"]

#: The key of the whole (no dimension fixed).
ALL = "all"


def slice_key(values: Mapping[str, str]) -> str:
    """A stable text key for a slice: ``"all"`` or ``"category=spam|region=FL"``
    (dimensions in alphabetical order).

    >>> slice_key({"region": "FL", "category": "spam"})
    'category=spam|region=FL'
    >>> slice_key({})
    'all'
    """
    return "|".join(f"{k}={values[k]}" for k in sorted(values)) or ALL


def parse_slice(key: str) -> dict[str, str]:
    """The dimension values a slice key names (``all`` names none); the inverse of
    :func:`slice_key`. Raises ``ValueError`` on a part without ``=``.

    >>> parse_slice("category=spam|region=FL"), parse_slice("all")
    ({'category': 'spam', 'region': 'FL'}, {})
    >>> parse_slice(slice_key({"kind": "review_posted"}))
    {'kind': 'review_posted'}
    """
    if key == ALL:
        return {}
    values: dict[str, str] = {}
    for part in key.split("|"):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"not a slice key part: {part!r} (expected name=value)")
        values[name] = value
    return values
