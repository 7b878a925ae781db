"""Narrative clusters: a planted new topic emerges, a stable one does not."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from analytics.detectors import topics
from analytics.detectors.clusters import CLUSTER_SCHEMA, MEMBER_SCHEMA, cluster_daily, find_emerging
from analytics.detectors.strands import STRAND_SCHEMA, find_strands

AS_OF = datetime(2026, 6, 1)

_STABLE = {
    "spam": [
        "spam messages advertising cheap pills",
        "bulk messages with links to cheap prescriptions",
        "repeated spam messages selling supplements",
    ],
    "harassment": [
        "patient keeps sending abusive messages to staff",
        "threatening messages after a cancelled appointment",
        "rude insults sent to the front desk",
    ],
    "no_show_abuse": [
        "booked five slots and never showed up",
        "repeated no shows at the clinic this month",
        "books appointments and skips them every week",
    ],
}
_NEW = [
    "caller claimed to be insurance verification and asked for my member id",
    "fake coverage verification call wanted a gift card prepayment",
    "insurance verification line asked for my policy number and birth date",
    "someone verifying my insurance coverage asked for gift cards",
]
_OPENERS = ["", "Hi, ", "Please help. ", "Reporting this: ", "Urgent: "]


def _corpus(*, planted: int, seed: int = 0, days: int = 90) -> pl.DataFrame:
    """Stable topics every day of the window at a steady rate; ``planted`` cases of a new
    topic in the last five days, filed under "other"; a stable topic's rate also
    doubles in the last week (its category explains it)."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in range(days):
        for category, texts in _STABLE.items():
            n = rng.poisson(6 if not (category == "spam" and day >= days - 7) else 12)
            for _ in range(n):
                text = _OPENERS[rng.integers(len(_OPENERS))] + texts[rng.integers(len(texts))]
                rows.append((day, category, text))
    for i in range(planted):
        day = days - 1 - (i % 5)
        rows.append((day, "other", _OPENERS[i % len(_OPENERS)] + _NEW[i % len(_NEW)]))
    start = AS_OF - timedelta(days=days)
    return pl.DataFrame(
        {
            "case_id": range(len(rows)),
            "opened_at": [start + timedelta(days=d, hours=int(h)) for (d, _, _), h in
                          zip(rows, rng.integers(0, 24, len(rows)), strict=True)],
            "category": [c for _, c, _ in rows],
            "description": [t for _, _, t in rows],
        }
    )  # fmt: skip


def _planted_cluster(clusters: pl.DataFrame, members: pl.DataFrame, ids: set[int]) -> dict:
    best = (
        members.filter(pl.col("case_id").is_in(list(ids)))
        .group_by("cluster_id")
        .len()
        .sort("len", descending=True)
        .row(0, named=True)
    )
    return {**clusters.filter(pl.col("cluster_id") == best["cluster_id"]).row(0, named=True),
            "held": best["len"] / len(ids)}  # fmt: skip


def test_a_planted_new_topic_is_flagged_and_stable_topics_are_not():
    cases = _corpus(planted=12)
    planted = set(cases.filter(pl.col("category") == "other")["case_id"].to_list())
    clusters, members = find_emerging(cases, as_of=AS_OF, n_clusters=6)
    new = _planted_cluster(clusters, members, planted)
    assert new["is_emerging"] and new["is_new"]
    assert new["held"] == 1.0 and new["recent_count"] == 12 and new["baseline_count"] == 0
    assert {"insurance", "verification"} <= set(new["top_terms"])
    assert new["top_category"] == "other" and new["top_category_share"] == 1.0
    # Only the planted topic emerges: spam doubled, but its category explains it.
    assert clusters.filter("is_emerging")["cluster_id"].to_list() == [new["cluster_id"]]
    assert clusters.row(0, named=True)["cluster_id"] == new["cluster_id"]
    spam = clusters.filter(pl.col("top_category") == "spam")
    assert spam.height >= 1 and not spam["is_emerging"].any()
    assert spam["q_value"].min() < 0.01  # the growth is real, yet explained
    assert members.height == cases.height and members.schema == pl.Schema(MEMBER_SCHEMA)
    assert clusters.schema == pl.Schema(CLUSTER_SCHEMA)


def test_two_cases_are_not_a_trend():
    cases = _corpus(planted=2)
    clusters, _ = find_emerging(cases, as_of=AS_OF, n_clusters=6)
    assert not clusters["is_emerging"].any()


def test_without_categories_a_new_topic_still_emerges():
    cases = _corpus(planted=12).drop("category")
    clusters, members = find_emerging(cases, as_of=AS_OF, n_clusters=6)
    planted = set(range(cases.height - 12, cases.height))
    new = _planted_cluster(clusters, members, planted)
    assert new["is_emerging"] and new["top_category"] is None


def test_only_cases_up_to_as_of_are_used():
    cases = _corpus(planted=12)
    clusters, members = find_emerging(cases, as_of=AS_OF - timedelta(days=5), n_clusters=6)
    assert (
        members["case_id"]
        .is_in(cases.filter(pl.col("opened_at") >= AS_OF - timedelta(days=5))["case_id"].to_list())
        .sum()
        == 0
    )
    assert not clusters["is_emerging"].any()  # the planted topic has not started yet


def test_the_same_seed_gives_the_same_result_and_order_does_not_matter():
    cases = _corpus(planted=12)
    first = find_emerging(cases, as_of=AS_OF, n_clusters=6, seed=3)
    again = find_emerging(cases, as_of=AS_OF, n_clusters=6, seed=3)
    assert_frame_equal(first[0], again[0])
    assert_frame_equal(first[1], again[1])
    shuffled = find_emerging(cases.sample(fraction=1.0, seed=1), as_of=AS_OF, n_clusters=6, seed=3)
    assert_frame_equal(first[1], shuffled[1])


def test_personal_data_never_becomes_a_term():
    cases = _corpus(planted=12).with_columns(
        description=pl.col("description") + " call me at 415-555-0101 or jo.smith@mail.example.com"
    )
    clusters, _ = find_emerging(cases, as_of=AS_OF, n_clusters=6)
    terms = set(clusters["top_terms"].explode().drop_nulls().to_list())
    assert not terms & {"jo", "smith", "mail", "example", "com", "415", "555"}


@pytest.mark.parametrize("texts", [[], ["", ""], ["the and of", "a an the"]])
def test_no_usable_text_gives_empty_frames(texts):
    cases = pl.DataFrame(
        {
            "case_id": range(len(texts)),
            "opened_at": [AS_OF - timedelta(days=1)] * len(texts),
            "description": texts,
        },
        schema_overrides={"opened_at": pl.Datetime("us"), "description": pl.String},
    )
    clusters, members = find_emerging(cases, as_of=AS_OF)
    assert clusters.is_empty() and members.is_empty()
    assert clusters.schema == pl.Schema(CLUSTER_SCHEMA)


def test_cluster_daily_counts_cases_per_day():
    cases = _corpus(planted=12)
    _, members = find_emerging(cases, as_of=AS_OF, n_clusters=6)
    daily = cluster_daily(members, cases)
    assert daily["cases"].sum() == members.height


@pytest.mark.parametrize(("planted", "emerging"), [(4, False), (6, True)])
def test_a_new_topic_needs_support_besides_significance(planted, emerging):
    # Four cases of new vocabulary are significant growth from nothing, but too few to
    # flag (min_recent 5); six are flagged.
    cases = _corpus(planted=planted)
    clusters, members = find_emerging(cases, as_of=AS_OF, n_clusters=6)
    ids = set(cases.filter(pl.col("category") == "other")["case_id"].to_list())
    found = _planted_cluster(clusters, members, ids)
    assert found["recent_count"] >= planted and found["is_new"]
    assert found["is_emerging"] is emerging
    loose = find_emerging(cases, as_of=AS_OF, n_clusters=6, min_recent=1)[0]
    assert loose.filter(pl.col("cluster_id") == found["cluster_id"])["is_emerging"][0]


def test_a_topic_must_grow_by_min_growth_to_emerge():
    # Six new cases against none before: (6 + 1) / (0 + 1) = 7 times the earlier rate,
    # enough for the default 3, not for 10.
    cases = _corpus(planted=6)
    ids = set(cases.filter(pl.col("category") == "other")["case_id"].to_list())
    for growth, emerging in ((3.0, True), (10.0, False)):
        clusters, members = find_emerging(cases, as_of=AS_OF, n_clusters=6, min_growth=growth)
        assert _planted_cluster(clusters, members, ids)["is_emerging"] is emerging


def _replay(cases: pl.DataFrame, ids: set[int], days: range, **kw) -> list[dict]:
    """find_emerging at the end of each day: the row of the topic holding most of ``ids``
    (None before any of them exists), with ``flags``: every topic flagged that day."""
    out = []
    for day in days:
        as_of = AS_OF - timedelta(days=day)
        clusters, members = find_emerging(cases, as_of=as_of, n_clusters=6, **kw)
        seen = ids & set(members["case_id"].to_list())
        row = _planted_cluster(clusters, members, seen) if seen else {}
        out.append({**row, "as_of": as_of, "flags": clusters["flagged"].sum()})
    return out


def _arriving(cases: pl.DataFrame, *, per_day: int, days: int) -> pl.DataFrame:
    """``cases`` plus ``per_day`` planted cases on each of the last ``days`` days."""
    start = cases["case_id"].max() + 1
    n = per_day * days
    planted = pl.DataFrame(
        {
            "case_id": range(start, start + n),
            "opened_at": [AS_OF - timedelta(days=days - i // per_day, hours=-(i % 12) - 6)
                          for i in range(n)],
            "category": ["other"] * n,
            "description": [_OPENERS[i % len(_OPENERS)] + _NEW[i % len(_NEW)] for i in range(n)],
        }
    )  # fmt: skip
    return pl.concat([cases, planted.cast(cases.schema)])


def test_a_topic_is_flagged_once_and_keeps_its_identity_while_it_grows():
    cases = _arriving(_corpus(planted=0), per_day=3, days=8)
    planted = set(cases.filter(pl.col("category") == "other")["case_id"].to_list())
    days = _replay(cases, planted, range(8, -1, -1))  # 8 days before AS_OF .. AS_OF
    flagged = [d["as_of"] for d in days if d.get("flagged")]
    assert len(flagged) == 1  # flagged once, on the first day it passes
    first = flagged[0]
    after = [d for d in days if d["as_of"] > first]
    assert after and all(d["is_emerging"] and not d["flagged"] for d in after)
    # Its first-flagged date, first-seen date and label stay the same while it grows.
    assert {d["first_flagged"] for d in after} == {(first - timedelta(days=1)).date()}
    assert {d["first_seen"] for d in after} == {(AS_OF - timedelta(days=8)).date()}
    assert all(d["held"] == 1.0 for d in after)
    # Nothing else is flagged on any day: the stable topics stay quiet.
    assert sum(d["flags"] for d in days) == 1


def test_a_stable_topic_is_never_flagged_however_long_the_replay():
    # No categories (none explains anything): three steady topics, every other day of a
    # month replayed.
    cases = _corpus(planted=0, seed=5).drop("category")
    clusters_per_day = [
        find_emerging(cases, as_of=AS_OF - timedelta(days=d), n_clusters=6)[0]
        for d in range(0, 30, 2)
    ]
    assert sum(c["is_emerging"].sum() for c in clusters_per_day) == 0


def test_a_churn_of_rare_names_is_never_flagged():
    # Every case names someone nobody else names: new vocabulary every day, no topic.
    rng = np.random.default_rng(2)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    cases = _corpus(planted=0, seed=2).drop("category")
    names = ["".join(rng.choice(letters, 7)) for _ in range(cases.height)]
    cases = cases.with_columns(
        description=pl.col("description") + " reported by " + pl.Series(names)
    )
    flagged = [
        find_emerging(cases, as_of=AS_OF - timedelta(days=d), n_clusters=6)[0]["is_emerging"].sum()
        for d in range(0, 30, 3)
    ]
    assert sum(flagged) == 0


def test_the_emergence_sentence_and_phrase_label():
    cases = _corpus(planted=12)
    planted = set(cases.filter(pl.col("category") == "other")["case_id"].to_list())
    clusters, members = find_emerging(cases, as_of=AS_OF, n_clusters=6)
    new = _planted_cluster(clusters, members, planted)
    # 12 cases over the last 5 days, none before: 0 expected; first seen 4 days before
    # the last day.
    assert new["summary"] == (
        "12 cases in the last 7 days against 0.0 expected; first seen 4 days ago; "
        "100% in category other"
    )
    assert new["expected"] == 0.0 and new["first_seen"] == (AS_OF - timedelta(days=5)).date()
    # Its sixth case arrived 3 days before AS_OF (2, 2, 2, 3, 3 a day): flagged then, not
    # again today.
    assert new["first_flagged"] == (AS_OF - timedelta(days=3)).date() and not new["flagged"]
    # The label is a phrase its cases use, not a bag of words.
    assert new["label"] in {"insurance verification", "coverage verification"}
    texts = cases.filter(pl.col("case_id").is_in(list(planted)))["description"].str.to_lowercase()
    assert texts.str.contains(new["label"], literal=True).sum() >= 2
    stable = clusters.filter(pl.col("top_category") == "harassment").row(0, named=True)
    assert stable["summary"].split("; ")[1] == "already there when the window starts"
    assert new["status"] == "new" and stable["status"] == "steady"


@pytest.mark.parametrize("association", [0.0, topics.STYLE_ASSOCIATION])
def test_topics_follow_what_texts_are_about_not_who_wrote_them(monkeypatch, association):
    # Half of every category's texts come from one reporter's template. With the style
    # terms dropped (the default) no topic is described by the template's words;
    # without, they describe most topics.
    base = _corpus(planted=0, seed=4)
    templated = np.random.default_rng(4).random(base.height) < 0.5
    template = "reporting on behalf of my elderly mother who asked me to write: "
    cases = base.with_columns(
        description=pl.when(pl.Series(templated))
        .then(pl.lit(template) + pl.col("description"))
        .otherwise(pl.col("description"))
    )
    monkeypatch.setattr(topics, "STYLE_ASSOCIATION", association)
    clusters, _ = find_emerging(cases, as_of=AS_OF, n_clusters=6)
    words = {"reporting", "behalf", "elderly", "mother", "asked", "write"}
    styled = sum(bool(words & set(terms)) for terms in clusters["top_terms"].to_list())
    assert styled == 0 if association else styled >= 3


def test_earlier_flags_passed_back_keep_a_topic_flagged_once():
    # A daily monitor passes back what it flagged: the planted topic is flagged on one
    # day, then recognised (it holds the earlier flag's cases) and not flagged again.
    cases = _arriving(_corpus(planted=0), per_day=3, days=8)
    planted = set(cases.filter(pl.col("category") == "other")["case_id"].to_list())
    earlier = pl.DataFrame(schema={"flag": pl.Int64, "case_id": pl.Int64, "flagged_on": pl.Date})
    raised = []
    for day in range(8, -1, -1):
        as_of = AS_OF - timedelta(days=day)
        clusters, members = find_emerging(cases, as_of=as_of, n_clusters=6, flagged_before=earlier)
        for row in clusters.filter("flagged").iter_rows(named=True):
            ids = members.filter(pl.col("cluster_id") == row["cluster_id"], "recent")["case_id"]
            raised.append((as_of, set(ids.to_list())))
            earlier = pl.concat([earlier, pl.DataFrame(
                {"flag": len(raised), "case_id": ids, "flagged_on": row["first_flagged"]},
                schema=earlier.schema)])  # fmt: skip
        if any(planted & ids for _, ids in raised):
            found = _planted_cluster(clusters, members, planted & set(members["case_id"]))
            assert found["is_emerging"]
            assert found["first_flagged"] == (raised[0][0] - timedelta(days=1)).date()
    assert len(raised) == 1 and raised[0][1] <= planted


def _storm() -> pl.DataFrame:
    """A month of refund complaints, then 24 storm cases in two days: 12 about
    donations, 12 about power cuts (one topic: they share the storm's words)."""
    t0 = AS_OF - timedelta(days=32)
    background = ["refund for my cancelled booking", "late refund for a booking"] * 30
    storm = [
        "storm flooding here, please donate to the red cross relief fund",
        "storm flooding again, donate blankets at the relief fund drive",
        "storm flooding cut our power, no electricity downtown since noon",
        "storm flooding means a power outage, electricity lines are down",
    ] * 6
    return pl.DataFrame(
        {
            "case_id": range(len(background) + len(storm)),
            "opened_at": [t0 + timedelta(hours=12 * i) for i in range(len(background))]
            + [AS_OF - timedelta(hours=40 - i) for i in range(len(storm))],
            "description": background + storm,
        }
    )


def test_an_emerging_topic_is_split_into_its_strands():
    cases = _storm()
    clusters, members = find_emerging(cases, as_of=AS_OF, n_clusters=2)
    storm = clusters.filter(pl.col("top_terms").list.contains("storm")).row(0, named=True)
    assert storm["is_emerging"] and storm["recent_count"] == 24
    strands = find_strands(cases, clusters, members, min_cases=8, per_strand=12)
    assert strands.schema == pl.Schema(STRAND_SCHEMA)
    assert strands["cluster_id"].to_list() == [storm["cluster_id"]] * 2
    donate = set(range(60, 84)) - {60 + i for i in range(24) if i % 4 >= 2}
    got = {frozenset(ids) for ids in strands["case_ids"].to_list()}
    assert got == {frozenset(donate), frozenset(set(range(60, 84)) - donate)}
    assert not strands["flagged"].any()  # without a memory, strands are shown, not flagged
    # Each strand is labelled with a phrase its own cases use.
    for row in strands.iter_rows(named=True):
        texts = cases.filter(pl.col("case_id").is_in(row["case_ids"]))["description"]
        assert " " in row["label"] and texts.str.contains(row["label"], literal=True).sum() >= 2
    # A monitor flagged the donations yesterday: only the power cuts are new.
    earlier = pl.DataFrame(
        {"flag": 0, "case_id": sorted(donate), "flagged_on": (AS_OF - timedelta(days=2)).date()}
    )
    again = find_strands(cases, clusters, members, min_cases=8, per_strand=12,
                         flagged_before=earlier)  # fmt: skip
    flagged = again.filter("flagged")
    assert flagged.height == 1 and set(flagged["case_ids"][0]) == set(range(60, 84)) - donate
    assert {"power", "electricity"} & set(flagged["top_terms"][0])


def test_hostile_text_never_reaches_a_label_sentence_or_strand_as_markup():
    # Labels, terms and sentences are shown as Markdown and in chart hovers: whatever a
    # reporter writes, they hold only words (letters and spaces), numbers and the fixed
    # wording of the sentence.
    hostile = [
        "storm flood [click](javascript:alert(1)) <script>x</script> **bold** `code`",
        "storm flood ![img](http://evil.example/x.png) <img src=x onerror=y> _em_ |a|b|",
    ] * 12
    cases = _storm().with_columns(
        description=pl.when(pl.col("case_id") >= 60)
        .then(pl.Series(["", ""] * 30 + hostile) + pl.col("description"))
        .otherwise(pl.col("description"))
    )
    clusters, members = find_emerging(cases, as_of=AS_OF, n_clusters=2)
    strands = find_strands(cases, clusters, members, min_cases=6, per_strand=12)
    assert not strands.is_empty()
    shown = [
        *clusters["label"].to_list(),
        *clusters["top_terms"].explode().drop_nulls().to_list(),
        *strands["label"].to_list(),
        *strands["top_terms"].explode().to_list(),
    ]
    assert all(re.fullmatch(r"[^\W\d_]+(?:[ ,]+[^\W\d_]+)*", text) for text in shown), shown
    for sentence in clusters["summary"].to_list():
        assert not set(sentence) & set("<>[]()*`_|!"), sentence
