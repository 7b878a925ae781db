"""Masking personal data in free text: hand-written cases and properties."""

from __future__ import annotations

import re

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.access.privacy import scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Email me at jane.doe+x@mail.example.co.uk today", "Email me at [EMAIL] today"),
        ("Call (415) 555-1638 or 415-555-1638.", "Call [PHONE] or [PHONE]."),
        ("Or +1 213 555 1275, or 212.555.0199", "Or [PHONE], or [PHONE]"),
        ("Abroad: +44 20 7946 0958", "Abroad: [PHONE]"),
        ("See https://evil.example/login?u=1 and www.bad.example", "See [URL] and [URL]"),
        ("Booked with Dr. Holly Doyle's office", "Booked with [NAME]'s office"),
        ("My name is Erin Short, phone 415-555-0101", "My name is [NAME], phone [PHONE]"),
        ("Their name was Samantha Rasmussen.", "Their name was [NAME]."),
        ("Contact: Andre Franklin, a.f@ex.org", "Contact: [NAME], [EMAIL]"),
        ("It belongs to Mary-Jane O'Neil (m@x.io)", "It belongs to [NAME] ([EMAIL])"),
        # Not personal data: amounts, counts, dates, places and a lone capitalised word.
        ("Paid $250 on 2026-03-01 for 3 visits", "Paid $250 on 2026-03-01 for 3 visits"),
        ("Seen in Florida in May", "Seen in Florida in May"),
        ("Rude Staff At The Desk", "Rude Staff At The Desk"),
    ],
)  # fmt: skip
def test_personal_data_is_masked(text, expected):
    assert scrub(pl.Series([text])).to_list() == [expected]


def test_nulls_and_order_are_kept():
    out = scrub(pl.Series("d", [None, "a@b.co", ""]))
    assert out.name == "d" and out.to_list() == [None, "[EMAIL]", ""]


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\d{3}[\s.-]\d{3}[\s.-]\d{4}")


@given(
    before=st.text(max_size=40),
    user=st.from_regex(r"[a-z][a-z0-9._]{0,12}", fullmatch=True),
    area=st.integers(200, 999),
    line=st.integers(0, 9999),
    after=st.text(max_size=40),
)
def test_planted_emails_and_phones_never_survive(before, user, area, line, after):
    text = f"{before} {user}@example.org {area}-555-{line:04d} {after}"
    out = scrub(pl.Series([text]))[0]
    assert f"{user}@example.org" not in out
    assert f"{area}-555-{line:04d}" not in out
    assert "[EMAIL]" in out and "[PHONE]" in out


@given(st.lists(st.text(max_size=80), max_size=20))
def test_scrubbing_is_idempotent_and_keeps_length(texts):
    once = scrub(pl.Series(texts, dtype=pl.String))
    assert once.len() == len(texts)
    assert scrub(once).to_list() == once.to_list()
    for text in once.to_list():
        assert not _EMAIL.search(text)
