"""The taxonomy: parsing a map's [taxonomy] table (line-numbered problems), the default is the
demo's, and a team's own categories, sources and severities flow through the metrics, the
brief's surfaces, emerging topics, filters, known events, the importer and source maps."""

from __future__ import annotations

import json
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from analytics.core import models, taxonomy
from analytics.core.filters import Filters, choices, parse_filters
from analytics.core.models import CaseSource, Category, Severity, init_db
from analytics.core.taxonomy import (
    DEFAULT_TAXONOMY,
    CategoryDef,
    SeverityDef,
    Taxonomy,
    TaxonomyError,
    line_finder,
    load_taxonomy,
    parse_taxonomy,
    using,
)
from analytics.detectors.clusters import find_emerging
from analytics.metrics import trends
from analytics.reports import surfaces
from analytics.sources.frames import (
    ACTIVE_COLUMNS,
    ANNOTATION_COLUMNS,
    CASE_COLUMNS,
    EXPOSURE_COLUMNS,
    Cube,
    conform,
)
from analytics.sources.ingest import import_file
from analytics.sources.sourcemap import MapError, load_map
from analytics.views.annotations import InvalidEvent, KnownEvent, check_event
from tests.test_clusters import _NEW, _OPENERS, AS_OF, _corpus
from tests.test_ingest import ACCOUNT_COLUMNS, GOOD_ACCOUNTS, quarantined, write_csv

HELPDESK_TOML = """\
[taxonomy]
sources = ["web_form", "email", "rule"]
automated = ["rule"]

[taxonomy.categories.fraud]
exposure = "booking_created"
surface = "bookings"

[taxonomy.categories.abuse]
exposure = "message_sent"
surface = "messaging"

[taxonomy.categories.spam-ish]
exposure = "message_sent"
surface = "messaging"

[taxonomy.categories.misc]
catch_all = true

[taxonomy.severities.p4]
sla_hours = 72
[taxonomy.severities.p3]
sla_hours = 24
[taxonomy.severities.p2]
sla_hours = 8
[taxonomy.severities.p1]
sla_hours = 1
"""
HELPDESK = Taxonomy(
    categories=(
        CategoryDef("fraud", "booking_created", False, "bookings"),
        CategoryDef("abuse", "message_sent", False, "messaging"),
        CategoryDef("spam-ish", "message_sent", False, "messaging"),
        CategoryDef("misc", "active_accounts", True, None),
    ),
    sources=("web_form", "email", "rule"),
    severities=(
        SeverityDef("p4", 72.0),
        SeverityDef("p3", 24.0),
        SeverityDef("p2", 8.0),
        SeverityDef("p1", 1.0),
    ),
    automated=("rule",),
)


def _parse(source: str, path: str = "team.toml") -> Taxonomy:
    return parse_taxonomy(tomllib.loads(source)["taxonomy"], path=path, lines=line_finder(source))


def _line(source: str, needle: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if needle in line)


# --- parsing ----------------------------------------------------------------------------------


def test_a_helpdesk_taxonomy_parses_in_its_order() -> None:
    assert _parse(HELPDESK_TOML) == HELPDESK
    assert HELPDESK.sla_hours == {"p4": 72.0, "p3": 24.0, "p2": 8.0, "p1": 1.0}
    assert HELPDESK.catch_all == ("misc",)
    assert HELPDESK.choices == {
        "category": ("fraud", "abuse", "spam-ish", "misc"),
        "severity": ("p4", "p3", "p2", "p1"),
        "source": ("web_form", "email", "rule"),
    }


def test_every_problem_is_reported_with_its_line() -> None:
    source = """\
[taxonomy]
sources = ["web_form", "web_form", "E-mail"]
automated = ["robot"]
colour = "blue"

[taxonomy.categories.fraud]
exposure = "page_viewed"
surface = "checkout"
catch_all = "yes"
weight = 2

[taxonomy.categories.Bad_Name]

[taxonomy.severities.p1]
sla_hours = -4
[taxonomy.severities.p2]
[taxonomy.severities.p3]
sla_hours = true
"""
    with pytest.raises(TaxonomyError) as caught:
        _parse(source)
    at = {needle.strip('"'): f"team.toml:{_line(source, needle)}" for needle in (
        "colour", "page_viewed", "checkout", '"yes"', "weight", "Bad_Name", "sources",
        "automated", "-4", "severities.p2]", "sla_hours = true",
    )}  # fmt: skip
    assert caught.value.problems == [
        f"{at['colour']}: taxonomy: unknown key `colour` (it has categories, sources, "
        "automated, severities)",
        f"{at['weight']}: taxonomy.categories.fraud: unknown key `weight` (a category has "
        "exposure, catch_all, surface)",
        f"{at['page_viewed']}: taxonomy.categories.fraud.exposure: `page_viewed` is not an "
        "exposure (booking_created, review_posted, message_sent, active_accounts)",
        f"{at['yes']}: taxonomy.categories.fraud.catch_all: give true or false",
        f"{at['checkout']}: taxonomy.categories.fraud.surface: `checkout` is not a product "
        "surface (bookings, reviews, messaging, payments, accounts)",
        f"{at['Bad_Name']}: taxonomy.categories: `Bad_Name` is not a usable name (lower-case "
        "letters, digits, _ and -, starting with a letter, at most 40)",
        f"{at['sources']}: taxonomy.sources: `web_form` is listed twice",
        f"{at['sources']}: taxonomy.sources: `E-mail` is not a usable name (lower-case "
        "letters, digits, _ and -, starting with a letter, at most 40)",
        f"{at['automated']}: taxonomy.automated: `robot` is not one of the sources",
        f"{at['-4']}: taxonomy.severities.p1.sla_hours: give the first-response target in "
        "hours, a positive number (not -4)",
        f"{at['severities.p2]']}: taxonomy.severities.p2: `sla_hours` is missing",
        f"{at['sla_hours = true']}: taxonomy.severities.p3.sla_hours: give the first-response "
        "target in hours, a positive number (not True)",
    ]


def test_missing_and_empty_lists_are_refused() -> None:
    source = "[taxonomy]\nsources = []\n[taxonomy.severities]\n"
    with pytest.raises(TaxonomyError) as caught:
        _parse(source)
    assert caught.value.problems == [
        "team.toml:1: taxonomy: `categories` is missing ([taxonomy.categories.NAME] tables)",
        "team.toml:2: taxonomy.sources: declare at least one",
        "team.toml:3: taxonomy.severities: declare at least one",
    ]
    with pytest.raises(TaxonomyError, match=r"^m:1: `taxonomy` must be a table"):
        parse_taxonomy(["fraud"], path="m")


_NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)


@st.composite
def taxonomies(draw: st.DrawFn) -> Taxonomy:
    names = st.lists(_NAMES, min_size=1, max_size=5, unique=True)
    categories = tuple(
        CategoryDef(
            name,
            draw(st.sampled_from(taxonomy.EXPOSURES)),
            draw(st.booleans()),
            draw(st.one_of(st.none(), st.sampled_from(taxonomy.SURFACE_KEYS))),
        )
        for name in draw(names)
    )
    sources = tuple(draw(names))
    automated = tuple(draw(st.lists(st.sampled_from(sources), unique=True)))
    hours = st.floats(min_value=0.25, max_value=1e4, allow_nan=False)
    severities = tuple(SeverityDef(name, draw(hours)) for name in draw(names))
    return Taxonomy(categories, sources, severities, automated)


def _toml(tax: Taxonomy) -> str:
    out = ["[taxonomy]", f"sources = {json.dumps(list(tax.sources))}"]
    out.append(f"automated = {json.dumps(list(tax.automated))}")
    for c in tax.categories:
        out += [f'[taxonomy.categories."{c.name}"]', f'exposure = "{c.exposure}"']
        out += [f"catch_all = {str(c.catch_all).lower()}"]
        out += [f'surface = "{c.surface}"'] if c.surface else []
    for s in tax.severities:
        out += [f"[taxonomy.severities.{s.name}]", f"sla_hours = {s.sla_hours!r}"]
    return "\n".join(out) + "\n"


@settings(max_examples=60, deadline=None)
@given(taxonomies())
def test_any_taxonomy_written_as_toml_reads_back_the_same(tax: Taxonomy) -> None:
    assert _parse(_toml(tax)) == tax


_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["categories", "sources", "automated", "severities", "x"]),
                       _JUNK, max_size=4))  # fmt: skip
def test_any_table_gives_a_taxonomy_or_line_numbered_problems(table: dict) -> None:
    try:
        tax = parse_taxonomy(table, path="m.toml")
    except TaxonomyError as exc:
        assert exc.problems and all(p.startswith("m.toml:1: ") for p in exc.problems)
    else:
        assert tax.categories and tax.sources and tax.severities


def test_a_map_file_without_a_taxonomy_gives_the_default(tmp_path: Path) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text('[source]\nurl = "env:THEIRS"\n')
    assert load_taxonomy(plain) is DEFAULT_TAXONOMY
    broken = tmp_path / "broken.toml"
    broken.write_text("[taxonomy]\nsources = [\n")
    with pytest.raises(TaxonomyError, match=rf"^{broken}:2: not valid TOML: "):
        load_taxonomy(broken)
    with pytest.raises(TaxonomyError, match=r":1: cannot read the map: FileNotFoundError$"):
        load_taxonomy(tmp_path / "missing.toml")


def test_the_map_named_by_the_variable_is_in_force(tmp_path: Path) -> None:
    path = tmp_path / "helpdesk.toml"
    path.write_text(HELPDESK_TOML)
    assert taxonomy.active({taxonomy.MAP_VARIABLE: str(path)}) == HELPDESK
    assert taxonomy.active({taxonomy.MAP_VARIABLE: ""}) is DEFAULT_TAXONOMY
    with using(HELPDESK):
        assert taxonomy.active({}) is HELPDESK
    assert taxonomy.active({}) is DEFAULT_TAXONOMY


def test_a_broken_taxonomy_in_force_is_reported_where_it_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[taxonomy]\nsources = []\n")
    monkeypatch.setenv(taxonomy.MAP_VARIABLE, str(path))
    assert taxonomy.active_or_default() is DEFAULT_TAXONOMY  # what modules fix on import
    with pytest.raises(TaxonomyError, match=rf"^{path}:1: taxonomy: `categories` is missing"):
        taxonomy.active()
    with pytest.raises(TaxonomyError):
        parse_filters({"category": "spam"})


def test_rows_outside_the_taxonomy_are_named_not_a_polars_error() -> None:
    frame = pl.DataFrame({"id": [1, 2, 3], "category": ["spam", "misc", "misc"]})
    with pytest.raises(ValueError) as caught:
        conform(frame, {"id": pl.Int64, "category": pl.Enum(["spam"])})
    assert str(caught.value) == (
        "category: 'misc' (2 rows) is not a value Lookout knows (for category, severity and "
        "source: the taxonomy in force, analytics.core.taxonomy)"
    )


# --- the default is the demo's ------------------------------------------------------------------


def test_the_default_is_exactly_the_demos_vocabulary_and_numbers() -> None:
    assert DEFAULT_TAXONOMY.category_names == tuple(c.value for c in Category)
    assert DEFAULT_TAXONOMY.sources == tuple(s.value for s in CaseSource)
    assert DEFAULT_TAXONOMY.severity_names == tuple(s.value for s in Severity)
    assert DEFAULT_TAXONOMY.sla_hours == {"critical": 2.0, "high": 12.0, "medium": 48.0,
                                          "low": 120.0}  # fmt: skip
    assert DEFAULT_TAXONOMY.exposure_of == {
        "fake_review": "review_posted",
        "review_extortion": "review_posted",
        "fraudulent_booking": "booking_created",
        "no_show_abuse": "booking_created",
        "payment_fraud": "booking_created",
        "harassment": "message_sent",
        "hate_speech": "message_sent",
        "spam": "message_sent",
        "off_platform_solicitation": "message_sent",
        "health_info_exposure": "message_sent",
        "impersonation": "active_accounts",
        "credential_misrepresentation": "active_accounts",
        "account_takeover": "active_accounts",
        "other": "active_accounts",
    }
    assert DEFAULT_TAXONOMY.catch_all == ("other",)
    assert DEFAULT_TAXONOMY.automated == ("automated_rule", "ml_model")
    assert choices()["category"] == DEFAULT_TAXONOMY.category_names
    assert CASE_COLUMNS["category"] == pl.Enum(DEFAULT_TAXONOMY.category_names)
    # The brief's surfaces are today's, with their categories in the order it names them.
    assert surfaces.surfaces() is surfaces.SURFACES
    assert [(s.key, set(s.categories)) for s in surfaces.SURFACES] == [
        (s.key, set(s.categories)) for s in surfaces.surfaces_of(DEFAULT_TAXONOMY)
    ]
    assert surfaces.SURFACES[-1].categories == ("other",)


# --- the metrics with a team's taxonomy ---------------------------------------------------------

MONDAY = datetime(2026, 3, 2)
_HELPDESK_COLUMNS = {
    **CASE_COLUMNS,
    "category": pl.Enum(HELPDESK.category_names),
    "severity": pl.Enum(HELPDESK.severity_names),
    "source": pl.Enum(HELPDESK.sources),
}


def _helpdesk_cube() -> Cube:
    """Five cases of one week under the helpdesk taxonomy, as its process's frames hold them.

    p1: answered in 0.5 h (kept) and 2 h (breached, 1 h target); p2: 10 h (8 h target);
    p4: 24 h (72 h); p3: unanswered 72 h later (24 h). Bookings 1,000, messages 250,
    active accounts 2,000."""
    h = timedelta(hours=1)
    rows = [  # category, severity, source, opened (hours after Monday), answered after, resolution
        ("fraud", "p1", "rule", 9, 0.5, "warning"),
        ("fraud", "p1", "web_form", 10, 2, "warning"),
        ("abuse", "p2", "email", 24, 10, None),
        ("spam-ish", "p4", "web_form", 48, 24, None),
        ("misc", "p3", "email", 96, None, None),
    ]
    cases = pl.DataFrame(
        {
            "id": range(1, 6),
            "opened_at": [MONDAY + r[3] * h for r in rows],
            "source": [r[2] for r in rows],
            "category": [r[0] for r in rows],
            "severity": [r[1] for r in rows],
            "status": ["open"] * 5,
            "region": ["CA"] * 5,
            "platform": ["web"] * 5,
            "subject_account_id": range(101, 106),
            "first_response_at": [None if r[4] is None else MONDAY + (r[3] + r[4]) * h
                                  for r in rows],
            "resolved_at": [MONDAY + (r[3] + 3) * h if r[5] else None for r in rows],
            "resolution": [r[5] for r in rows],
            "repeat_offender": [False] * 5,
        }
    )  # fmt: skip
    exposure = pl.DataFrame(
        {
            "day": [MONDAY.date(), MONDAY.date()],
            "kind": ["booking_created", "message_sent"],
            "region": ["CA", "CA"],
            "platform": ["web", "web"],
            "events": [1_000, 250],
        }
    )
    return Cube(
        filters=Filters(start=MONDAY.date(), end=MONDAY.date() + timedelta(days=6)),
        cases=conform(cases, _HELPDESK_COLUMNS),
        exposure=conform(exposure, EXPOSURE_COLUMNS),
        active=pl.DataFrame({"week": [MONDAY.date()], "accounts": [2_000]}, schema=ACTIVE_COLUMNS),
        annotations=pl.DataFrame(schema=ANNOTATION_COLUMNS),
        as_of=MONDAY + timedelta(days=7),
    )


def test_sla_breaches_follow_the_teams_severities() -> None:
    with using(HELPDESK):
        sla = trends.weekly_metrics(_helpdesk_cube(), by="severity")
    got = sla.select(pl.col("severity").cast(pl.String), "due", "breached", "sla_breach_rate")
    assert sorted(got.rows()) == [
        ("p1", 2, 1, 0.5),
        ("p2", 1, 1, 1.0),
        ("p3", 1, 1, 1.0),
        ("p4", 1, 0, 0.0),
    ]


def test_prevalence_uses_each_categorys_declared_exposure() -> None:
    with using(HELPDESK):
        cube = _helpdesk_cube()
        by_category = trends.weekly_metrics(cube, by="category")
        overall = trends.weekly_metrics(cube)
    got = by_category.select(
        pl.col("category").cast(pl.String), "new_cases", "exposure", "exposure_kind", "prevalence"
    )
    assert sorted(got.rows()) == [
        ("abuse", 1, 250, "messages", 4.0),
        ("fraud", 2, 1_000, "bookings", 2.0),
        ("misc", 1, 2_000, "active accounts", 0.5),
        ("spam-ish", 1, 250, "messages", 4.0),
    ]
    # One of the two violations was found by the team's automated source.
    assert overall.select("violations", "proactive", "proactive_rate").row(0) == (2, 1, 0.5)


def test_the_briefs_surfaces_follow_the_teams_categories() -> None:
    with using(HELPDESK):
        found = [(s.key, s.title, s.categories) for s in surfaces.surfaces()]
        w = MONDAY.date()
        cells = pl.DataFrame(
            {"week": [w] * 4, "category": ["fraud", "abuse", "spam-ish", "misc"],
             "cases": [30, 40, 25, 12]}
        )  # fmt: skip
        exposure = pl.DataFrame(
            {"week": [w] * 4, "category": ["fraud", "abuse", "spam-ish", "misc"],
             "exposure": [1_000, 250, 250, 2_000],
             "exposure_kind": ["bookings", "messages", "messages", "active accounts"]}
        )  # fmt: skip
        weeks = surfaces.surface_weeks(cells, exposure)
    assert found == [
        ("bookings", "Bookings", ("fraud",)),
        ("messaging", "Messaging", ("abuse", "spam-ish")),
        ("elsewhere", "Not tied to one surface", ("misc",)),
    ]
    whole = weeks.filter(pl.col("category").is_null())
    assert whole.select("surface", "cases", "exposure").rows() == [("messaging", 65, 250)]
    assert sorted(weeks.filter(pl.col("category").is_not_null()).select(
        "surface", "category", "cases").rows()) == [
        ("bookings", "fraud", 30), ("elsewhere", "misc", 12),
        ("messaging", "abuse", 40), ("messaging", "spam-ish", 25),
    ]  # fmt: skip


def _growing_under(category: str) -> pl.DataFrame:
    """The clusters test's corpus in the helpdesk's words, and a topic that has always been
    there (one case a day) and grew to 30 in the last week, filed under ``category``."""
    rename = {"spam": "spam-ish", "harassment": "abuse", "no_show_abuse": "fraud"}
    base = _corpus(planted=0).with_columns(pl.col("category").replace_strict(rename))
    rows = [(AS_OF - timedelta(days=90 - d, hours=-3), _NEW[d % 4]) for d in range(83)]
    rows += [
        (AS_OF - timedelta(days=1 + i % 7, hours=-2 - i % 7), _OPENERS[i % 5] + _NEW[i % 4])
        for i in range(30)
    ]
    extra = pl.DataFrame(
        {
            "case_id": range(base.height, base.height + len(rows)),
            "opened_at": [r[0] for r in rows],
            "category": [category] * len(rows),
            "description": [r[1] for r in rows],
        }
    )
    return pl.concat([base, extra.cast(base.schema)])


def test_emerging_topics_watch_the_teams_catch_all_categories() -> None:
    cases = _growing_under("misc")
    not_watched = Taxonomy(
        tuple(CategoryDef(c.name) for c in HELPDESK.categories), HELPDESK.sources,
        HELPDESK.severities,
    )  # fmt: skip
    with using(HELPDESK):
        watched, _ = find_emerging(cases, as_of=AS_OF, n_clusters=10)
    with using(not_watched):
        unwatched, _ = find_emerging(cases, as_of=AS_OF, n_clusters=10)
    grown = watched.filter(pl.col("top_category") == "misc").row(0, named=True)
    assert (grown["is_new"], grown["recent_count"], grown["baseline_count"]) == (False, 30, 83)
    assert watched.filter("is_emerging")["top_category"].to_list() == ["misc"]
    assert unwatched.filter("is_emerging").is_empty()  # misc explains it when not a catch-all


# --- filters, known events, the database, the importer ------------------------------------------


def test_url_filters_accept_the_teams_values_only() -> None:
    params = {"category": "spam-ish,spam", "severity": "p1,critical", "source": "rule"}
    with using(HELPDESK):
        mine, notes = parse_filters(params)
    assert (mine.category, mine.severity, mine.source) == (("spam-ish",), ("p1",), ("rule",))
    assert notes == [
        "Ignored category 'spam': not a known value.",
        "Ignored severity 'critical': not a known value.",
    ]
    ours, notes = parse_filters(params)
    assert (ours.category, ours.severity, ours.source) == (("spam",), ("critical",), ())
    assert notes == [
        "Ignored category 'spam-ish': not a known value.",
        "Ignored severity 'p1': not a known value.",
        "Ignored source 'rule': not a known value.",
    ]


def test_a_known_event_concerns_one_of_the_teams_categories() -> None:
    event = KnownEvent(datetime(2026, 3, 2), None, "outage", "Queue down", category="misc")
    with using(HELPDESK):
        assert check_event(event).category == "misc"
    with pytest.raises(InvalidEvent, match="Choose a category from the list"):
        check_event(event)


CASE_HEADER = [
    "id", "opened_at", "source", "category", "severity", "status", "region", "platform",
    "subject_account_id", "description",
]  # fmt: skip


def test_the_importer_takes_the_teams_vocabulary(engine: Engine, tmp_path: Path) -> None:
    import_file(engine, "accounts", write_csv(tmp_path / "a.csv", ACCOUNT_COLUMNS, GOOD_ACCOUNTS))
    rows = [
        ["10", "2024-03-01T00:00:00Z", "email", "spam-ish", "p1", "open", "CA", "web", "2", "x"],
        ["11", "2024-03-01T00:00:00Z", "email", "fake_review", "p9", "open", "CA", "web", "2", "y"],
    ]
    with using(HELPDESK):
        result = import_file(engine, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows))
    assert (result.inserted, result.quarantined) == (1, 1)
    assert quarantined(tmp_path / "c.quarantine.csv") == [
        (
            "2",
            "category: 'fake_review' is not one of fraud, abuse, spam-ish, misc; "
            "severity: 'p9' is not one of p4, p3, p2, p1",
            "11",
        )
    ]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT category, severity, source FROM cases")).all()
    assert [tuple(r) for r in stored] == [("spam-ish", "p1", "email")]
    # Under the default taxonomy the same file's helpdesk values are the ones refused.
    again = import_file(engine, "cases", write_csv(tmp_path / "d.csv", CASE_HEADER, rows[:1]))
    assert again.quarantined == 1
    assert quarantined(tmp_path / "d.quarantine.csv")[0][1].startswith(
        "source: 'email' is not one of user_report, "
    )


def test_postgresql_drops_the_old_checks_and_widens_the_columns(pg_url: str) -> None:
    from analytics.core.database import make_engine

    engine = make_engine(pg_url)
    try:
        init_db(engine)
        with engine.begin() as conn:  # as a database made before the taxonomy had it
            conn.exec_driver_sql("ALTER TABLE cases ALTER COLUMN category TYPE VARCHAR(32)")
            conn.exec_driver_sql(
                "ALTER TABLE cases ADD CONSTRAINT ck_cases_category CHECK (category IN ('spam'))"
            )
        init_db(engine)
        found = inspect(engine)
        checks = {c["name"] for c in found.get_check_constraints("cases")}
        assert "ck_cases_category" not in checks and "ck_cases_case_status" in checks
        column = next(c for c in found.get_columns("cases") if c["name"] == "category")
        assert column["type"].length == models.TAXONOMY_LENGTH == 40
    finally:
        engine.dispose()


# --- source maps --------------------------------------------------------------------------------


def _cases_map(values: str) -> str:
    columns = "\n".join(f'{c} = "{c}"' for c in CASE_HEADER)
    return f'{HELPDESK_TOML}\n[cases]\nfrom = "tickets"\n\n[cases.columns]\n{columns}\n\n' \
        f"[cases.values.category]\n{values}\n"  # fmt: skip


def test_a_map_checks_its_values_against_its_own_taxonomy(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(_cases_map('"fraud-card" = "fraud"\n"5star" = "spam-ish"'))
    smap = load_map(good)
    assert smap.taxonomy == HELPDESK
    cases = smap.entity("cases")
    assert cases is not None
    assert dict(cases.values["category"].values) == {"fraud-card": "fraud", "5star": "spam-ish"}
    body = _cases_map('"5star" = "fake_review"')
    bad = tmp_path / "bad.toml"
    bad.write_text(body)
    with pytest.raises(MapError) as caught:
        load_map(bad)
    assert caught.value.problems == [
        f"{bad}:{_line(body, '5star')}: cases.values.category: `5star` maps to `fake_review`, "
        "which is not a Lookout category (fraud, abuse, spam-ish, misc)"
    ]


def test_a_maps_taxonomy_problems_are_line_numbered(tmp_path: Path) -> None:
    body = _cases_map('"x" = "fraud"').replace("sla_hours = 8", "sla_hours = 0")
    path = tmp_path / "m.toml"
    path.write_text(body)
    with pytest.raises(MapError) as caught:
        load_map(path)
    assert caught.value.problems == [
        f"{path}:{_line(body, 'sla_hours = 0')}: taxonomy.severities.p2.sla_hours: give the "
        "first-response target in hours, a positive number (not 0)"
    ]
    only = tmp_path / "only.toml"
    only.write_text(HELPDESK_TOML)  # a map may declare only its taxonomy (for imports)
    assert load_map(only).taxonomy == HELPDESK and load_map(only).entities == ()
