"""The Escalations list on the Overview page (issue 19, item 5): leadership sees what
associates escalated, with its urgency, words, numbers and link; product teams never
see it; an associate's words are shown as text, never as Markdown or HTML."""

from __future__ import annotations

import pytest

from analytics.access.audit import utc_now
from analytics.access.roles import Viewer
from analytics.alerts import escalations
from analytics.core import database
from analytics.core.models import Role
from tests.helpers import copy_small_demo, open_page

HOSTILE = "Growing fast in FL **bold** <img src=x onerror=alert(1)> [click](javascript:x)"


@pytest.fixture(scope="module")
def escalated(small_demo_file, tmp_path_factory) -> str:
    url = copy_small_demo(small_demo_file, tmp_path_factory.mktemp("escalations"))
    engine = database.make_engine(url)
    escalations.escalate(
        engine, viewer=Viewer("ann", Role.associate), subject_kind="topic",
        subject_ref="topic 30", title="fake 5-star reviews", message=HOSTILE,
        urgency="now", evidence={"Cases this week": "212"},
        link="http://lookout.test/emerging?emerging.topic=30", now=utc_now(),
    )  # fmt: skip
    engine.dispose()
    return url


@pytest.mark.parametrize("role", ["leadership", "associate", "admin"])
def test_the_overview_lists_the_escalation_as_text(monkeypatch, escalated, role) -> None:
    at = open_page(monkeypatch, escalated, "pages/home.py", role=role)
    assert not at.exception
    assert "Escalations" in [h.value for h in at.subheader]
    assert HOSTILE in [t.value for t in at.text]  # st.text: shown as typed, never rendered
    heads = [m.value for m in at.markdown if m.value.startswith(":red-badge[Act now]")]
    assert heads and "by ann" in heads[0] and "fake 5\\-star reviews" in heads[0]
    assert "topic 30" not in heads[0]  # the subject by its name, not its id
    assert any(c.value == "Cases this week: 212" for c in at.caption)
    assert any(
        m.value == "[Open the evidence](http://lookout.test/emerging?emerging.topic=30)"
        for m in at.markdown
    )


def test_product_teams_never_see_escalations(monkeypatch, escalated) -> None:
    at = open_page(monkeypatch, escalated, "pages/home.py", role="product")
    assert not at.exception
    assert "Escalations" not in [h.value for h in at.subheader]
    assert not any("Growing fast" in t.value for t in at.text)
