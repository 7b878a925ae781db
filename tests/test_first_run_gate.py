"""A page run by itself, signed out (what Streamlit does on a new server's first
request, without ``app.py``), shows the sign-in form and nothing of the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import HANG_S
from ui import nav

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("path", "title"), [(p, t) for p, t, _, _ in nav.PAGES])
def test_a_page_run_signed_out_shows_only_the_sign_in(
    small_db: str, monkeypatch: pytest.MonkeyPatch, path: str, title: str
) -> None:
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    at = AppTest.from_file(str(ROOT / path), default_timeout=HANG_S).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Lookout"]
    assert "Sign in" in [b.label for b in at.button]
    assert title not in [m.value for m in at.markdown] + [h.value for h in at.header]
    assert len(at.text_input) == 2  # name and password
