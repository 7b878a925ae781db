"""The Admin page shows roles and actions in words (the CSV export keeps the codes)."""

from __future__ import annotations

from analytics import access
from analytics.core import database
from tests.helpers import open_page


def test_roles_and_actions_read_as_words(monkeypatch, own_small_db) -> None:  # noqa: ANN001
    engine = database.make_engine(own_small_db)
    access.add_user(engine, "ann", "admin", None)
    access.add_user(engine, "bob", "associate", None)
    engine.dispose()
    at = open_page(monkeypatch, own_small_db, "pages/admin.py", role="admin")
    assert not at.exception
    users, log = at.dataframe[0].value, at.dataframe[-1].value
    assert dict(zip(users["name"], users["role"], strict=True)) == {
        "ann": "Admin",
        "bob": "Associate",
    }
    shown = [str(v) for v in [*log.get("role", []), *log.get("action", [])]]
    assert all(v[:1].isupper() and "_" not in v for v in shown), shown
