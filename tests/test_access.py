"""Roles, accounts, audit: what each role gets from each data function and page."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update
from streamlit.testing.v1 import AppTest

from analytics import access, reports
from analytics.access import AccessDenied, SignInFailed, Viewer, users
from analytics.core import database, models
from analytics.core.filters import Filters
from analytics.core.models import AuditLog, Role, User
from analytics.sources import cases
from analytics.views import anomalies, emerging
from tests.helpers import HANG_S, SMALL_DEMO_END, app_as, copy_small_demo
from ui import nav

ROOT = Path(__file__).resolve().parent.parent
AS_OF = datetime.combine(SMALL_DEMO_END, datetime.min.time())
RING_AS_OF = datetime(2026, 2, 23)


@pytest.fixture(scope="module")
def small_db(small_demo_file, tmp_path_factory) -> str:
    """A copy of the small demo: these tests add users and append to the audit log."""
    return copy_small_demo(small_demo_file, tmp_path_factory.mktemp("access"))


@pytest.fixture(scope="module")
def reader(small_db):
    engine = database.make_reader(small_db)
    yield engine
    engine.dispose()


# Each data function that returns rows or text, called as a role would call it.
CALLS = {
    "search_cases": lambda e, r: cases.search_cases(e, cases.CaseQuery(page_size=5), role=r),
    "case_detail": lambda e, r: cases.case_detail(e, 1, role=r),
    "account_profile": lambda e, r: cases.account_profile(e, 1, role=r),
    "account_events": lambda e, r: cases.account_events(e, 1, role=r),
    "account_cases": lambda e, r: cases.account_cases(e, 1, role=r),
    "linked_accounts": lambda e, r: cases.linked_accounts(
        e, 1, role=r, start=AS_OF - timedelta(days=28), end=AS_OF
    ),
    "emerging_view": lambda e, r: emerging.emerging_view(e, Filters(), as_of=AS_OF, role=r),
    "ring_view": lambda e, r: emerging.ring_view(e, as_of=RING_AS_OF, role=r),
    "ring_cases": lambda e, r: emerging.ring_cases(e, [1, 2], role=r),
    "account_timeline": lambda e, r: anomalies.account_timeline(e, 1, role=r),
    "recent_incidents": lambda e, r: anomalies.recent_incidents(e, end=SMALL_DEMO_END, role=r),
    "leadership_brief": lambda e, r: reports.build_brief(
        e, week=date(2026, 4, 20), audience="leadership", role=r
    ),
    "product_brief": lambda e, r: reports.build_brief(
        e, week=date(2026, 4, 20), audience="product", role=r
    ),
    "audit_log": lambda e, r: access.audit_frame(e, r),
    "users": lambda e, r: access.list_users(e, r),
}
# What each role may call; everything else is refused.
MAY = {
    Role.admin: {"recent_incidents", "leadership_brief", "product_brief", "audit_log", "users"},
    Role.leadership: {
        "search_cases", "case_detail", "account_profile", "account_events", "account_cases",
        "linked_accounts", "emerging_view", "ring_view", "ring_cases", "account_timeline",
        "recent_incidents", "leadership_brief", "product_brief",
    },
    Role.product: {"product_brief"},
}  # fmt: skip
MAY[Role.associate] = MAY[Role.leadership]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(CALLS))
def test_role_matrix_of_the_data_functions(reader, role: Role, name: str) -> None:
    if name in MAY[role]:
        CALLS[name](reader, role)
    else:
        with pytest.raises(AccessDenied, match=f"the {role.value} role may not see"):
            CALLS[name](reader, role)


def test_what_leadership_gets_is_masked(reader) -> None:
    rows = cases.search_cases(reader, cases.CaseQuery(page_size=200), role="leadership").rows
    text_ = " ".join(rows["description"])
    assert "@" not in text_
    assert "[EMAIL]" in text_ or "[PHONE]" in text_
    profile = cases.account_profile(reader, 1, role="leadership")
    assert profile is not None and "•••@" in profile["email"]


def test_reveal_needs_the_associate_role_and_is_audited(small_db, reader) -> None:
    writer = database.make_engine(small_db)
    with writer.connect() as conn:
        case_id, raw = conn.execute(
            select(models.Case.id, models.Case.description).where(
                models.Case.description.like("%@%")
            )
        ).first()
    boss = Viewer("lee", Role.leadership)
    with pytest.raises(AccessDenied):
        cases.reveal_case(reader, writer, case_id, viewer=boss)
    before = _audit_rows(writer, "reveal")
    found, _ = cases.reveal_case(reader, writer, case_id, viewer=Viewer("ann", Role.associate))
    assert found is not None and found["description"] == raw
    masked, _ = cases.case_detail(reader, case_id, role="associate")
    assert masked is not None and masked["description"] != raw
    after = _audit_rows(writer, "reveal")
    assert after - before == 1
    with writer.connect() as conn:
        row = conn.execute(
            select(AuditLog.user_name, AuditLog.role, AuditLog.target).order_by(AuditLog.id.desc())
        ).first()
    assert tuple(row) == ("ann", "associate", f"case {case_id}")
    writer.dispose()


def _audit_rows(engine, action: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == action)
            ).scalar_one()
        )


def test_audit_rows_cannot_be_changed_or_deleted(engine) -> None:
    access.audit(engine, Viewer("ann", Role.associate), "export", target="cases")
    for statement in (update(AuditLog).values(action="nothing"), delete(AuditLog)):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    assert _audit_rows(engine, "export") == 1


def test_a_reader_cannot_write(db_url) -> None:
    engine = database.make_engine(db_url)
    models.init_db(engine)
    engine.dispose()
    reader = database.make_reader(db_url)
    with pytest.raises(Exception, match="(?i)read-?only"), reader.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (ts, user_name, role, action) VALUES "
                          "('2026-01-01', 'x', 'y', 'z')"))  # fmt: skip
    with reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditLog)).scalar_one() == 0
    reader.dispose()


def test_local_accounts_hash_and_lock_out(engine) -> None:
    access.add_user(engine, "ann", "associate", "correct horse battery")
    with pytest.raises(ValueError, match="exists"):
        access.add_user(engine, "ann", "product", "another password")
    with pytest.raises(ValueError, match="at least 10"):
        access.add_user(engine, "bob", "product", "short")
    with pytest.raises(ValueError, match="unknown role"):
        access.add_user(engine, "bob", "root", "long enough password")
    with engine.connect() as conn:
        stored = conn.execute(select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "horse" not in stored
    assert "password_hash" not in access.list_users(engine, "admin").columns
    assert access.sign_in(engine, "ann", "correct horse battery") == Viewer("ann", Role.associate)
    t = datetime(2026, 11, 1, 12)
    for _ in range(access.MAX_FAILURES):
        with pytest.raises(SignInFailed) as refused:
            access.sign_in(engine, "ann", "guess", now=t)
        assert str(refused.value) == access.REFUSAL
    # Locked: even the right password is refused until the lock ends, with the very
    # words an unknown name gets (a stranger cannot tell that "ann" exists).
    with pytest.raises(SignInFailed) as locked:
        access.sign_in(engine, "ann", "correct horse battery", now=t + timedelta(minutes=5))
    later = t + access.LOCKOUT + timedelta(seconds=1)
    assert access.sign_in(engine, "ann", "correct horse battery", now=later).role is Role.associate
    with pytest.raises(SignInFailed) as unknown:
        access.sign_in(engine, "nobody", "whatever")
    assert str(locked.value) == str(unknown.value) == access.REFUSAL
    assert _audit_rows(engine, "login") == 2
    assert _audit_rows(engine, "login_failed") == access.MAX_FAILURES + 1
    assert _audit_rows(engine, "login_refused") == 1
    access.set_role(engine, "ann", "product")
    assert access.list_users(engine, "admin")["role"].to_list() == ["product"]
    access.remove_user(engine, "ann")
    with pytest.raises(ValueError, match="no user"):
        access.remove_user(engine, "ann")


def test_lockout_holds_against_concurrent_guesses(engine) -> None:
    """The race from issue 14: many wrong passwords at once. Each attempt is counted in
    the database before its password is checked, so at most MAX_FAILURES passwords are
    ever checked, and the right one sent after them is refused."""
    access.add_user(engine, "ann", "associate", "correct horse battery")
    checked: list[str] = []
    real_verify = users._verify

    def counting_verify(stored: str | None, password: str) -> bool:
        checked.append(password)
        return real_verify(stored, password)

    guesses = [f"guess number {i}" for i in range(24)]
    start = threading.Barrier(len(guesses))

    def guess(password: str) -> str:
        start.wait()
        try:
            access.sign_in(engine, "ann", password)
        except SignInFailed:
            return "refused"
        return "in"

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_verify", counting_verify)
        with ThreadPoolExecutor(len(guesses)) as pool:
            outcomes = list(pool.map(guess, guesses))
        assert outcomes == ["refused"] * len(guesses)
        assert len(checked) <= access.MAX_FAILURES
        with pytest.raises(SignInFailed):  # locked now, even for the right password
            access.sign_in(engine, "ann", "correct horse battery")
    assert len(checked) <= access.MAX_FAILURES
    assert _audit_rows(engine, "login_failed") == len(checked)
    assert _audit_rows(engine, "login_refused") == len(guesses) + 1 - len(checked)


# ------------------------------------------------------------------ pages by role

PAGES = {
    "Overview": "pages/home.py",
    "Weekly trends": "pages/trends.py",
    "Anomalies": "pages/anomalies.py",
    "Emerging threats": "pages/emerging.py",
    "Case Explorer": "pages/cases.py",
    "Reports": "pages/reports.py",
    "Known events": "pages/events.py",
    "Admin": "pages/admin.py",
}
SEES = {
    Role.admin: {"Overview", "Weekly trends", "Reports", "Admin"},
    Role.leadership: set(PAGES) - {"Admin"},
    Role.associate: set(PAGES) - {"Admin"},
    Role.product: {"Overview", "Reports"},
}


@pytest.mark.parametrize("role", list(Role))
def test_role_matrix_of_the_pages(monkeypatch, small_db, role: Role) -> None:
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    for title, page in PAGES.items():
        if title in SEES[role]:
            at = app_as(role.value)
            at.switch_page(page)
        else:
            # Run the page file on its own, as Streamlit may on a first request: the page
            # itself refuses a role that may not use it.
            at = AppTest.from_file(str(ROOT / page), default_timeout=HANG_S)
            at.session_state["lookout_viewer"] = Viewer("someone", role)
        at.run()
        assert not at.exception, (role, page)
        refused = any("cannot open this page" in e.value for e in at.error)
        assert refused == (title not in SEES[role]), (role, title)
    # Through the app: every page is registered (a link survives the sign-in), the
    # menu lists only the role's pages, and a page opened by URL refuses a wrong role.
    viewer = Viewer("someone", role)
    menu = {title for _, title, _, need in nav.PAGES if nav.in_menu(viewer, need, ready=True)}
    assert menu == SEES[role]
    at = app_as(role.value).run()
    for title, page in PAGES.items():
        at.switch_page(page)
        at.run()
        assert not at.exception, (role, page)
        refused = any("cannot open this page" in e.value for e in at.error)
        assert refused == (title not in SEES[role]), (role, title)


def test_product_reports_offer_only_the_product_brief(monkeypatch, small_db) -> None:
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    at = app_as("product")
    at.query_params["reports.audience"] = "leadership"
    at.switch_page("pages/reports.py")
    at.run()
    assert not at.exception
    assert "(product)" in at.caption[0].value
    assert any("Ignored audience" in w.value for w in at.warning)


def test_a_case_view_and_its_reveal_are_audited(monkeypatch, small_db) -> None:
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    engine = database.make_engine(small_db)
    views, reveals = _audit_rows(engine, "case_view"), _audit_rows(engine, "reveal")
    at = app_as("associate")
    at.query_params["cases.case"] = "7"
    at.switch_page("pages/cases.py")
    at.run()
    assert _audit_rows(engine, "case_view") == views + 1
    at.button(key="cases_reveal").click().run()
    assert not at.exception
    assert _audit_rows(engine, "reveal") == reveals + 1
    assert any("revealed" in c.value for c in at.caption)
    leader = app_as("leadership")
    leader.query_params["cases.case"] = "7"
    leader.switch_page("pages/cases.py")
    leader.run()
    assert "cases_reveal" not in {b.key for b in leader.button}
    engine.dispose()


def test_local_sign_in_form(monkeypatch, small_db) -> None:
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", small_db)
    engine = database.make_engine(small_db)
    access.add_user(engine, "pat", "product", "a long enough secret")
    engine.dispose()
    # The first run registers the pages; AppTest then runs the page they resolve to.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_S).run().run()
    assert not at.exception
    assert not any("Demo" in i.value for i in at.info)  # never the demo on another URL
    at.text_input(key="sign_in_name").set_value("pat")
    at.text_input(key="sign_in_pw").set_value("wrong password!")
    at.button[0].click().run()
    assert f"Cannot sign in: {access.REFUSAL}." in at.error[0].value
    at.text_input(key="sign_in_pw").set_value("a long enough secret")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["lookout_viewer"] == Viewer("pat", Role.product)


def test_the_embedded_demo_signs_in_a_demo_associate(monkeypatch, small_db) -> None:
    monkeypatch.delenv("LOOKOUT_DATABASE_URL", raising=False)
    monkeypatch.setattr(database, "DEFAULT_DATABASE_URL", small_db)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=HANG_S).run()
    assert not at.exception
    assert any("Demo: signed in automatically" in i.value for i in at.info)
    assert at.session_state["lookout_viewer"].via == "demo"
