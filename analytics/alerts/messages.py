"""What a subscriber reads: a stored incident, a digest or a test, written for one role.

Every message is a :class:`~analytics.alerts.message.Message` in plain words: what
happened (the slice in words, never its key), how big (the peak against what was
expected), since when, how sure (severity and p), and where to click (``link``, into
Lookout, which each channel shows after ``text``). Secondary links (an incident's cases
in Case Explorer) are lines of ``text``.

What each role's message carries follows what that role may see
(:mod:`analytics.access.roles`):

- **associate** and **leadership**: the numbers, a link to the incident on the
  Anomalies page and, for incidents of cases, to its cases in Case Explorer (the
  cases themselves, their text and the accounts stay in Lookout);
- **admin**: the numbers, a link to the weekly brief (admins do not open Anomalies);
- **product**: what the product brief's anomalies section shows: the slice, the days,
  severity and p, **no counts** (neither the peak nor what was expected), and a link
  to the weekly brief. An incident whose peak is below
  :data:`~analytics.access.suppression.SUPPRESSION_THRESHOLD` is not told to product
  subscribers at all (:func:`product_may_see`): naming that slice would point at a
  small cell.

No message carries case text, account ids or email addresses, whatever the role.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from analytics.access import roles as access
from analytics.access.suppression import SUPPRESSION_THRESHOLD
from analytics.alerts.message import Message
from analytics.core.calendar import iso_week
from analytics.core.models import Role
from analytics.present.formatting import (
    format_count,
    format_day,
    format_days,
    format_mean,
    format_moment,
    format_p,
    format_slice,
)

if TYPE_CHECKING:  # the reports' modules load plotly: only the watch's story reads them
    from analytics.reports.model import Brief
    from analytics.reports.story import StoryItem

__all__ = [
    "BRIEF_HTML_MOST",
    "CHANGES",
    "brief_message",
    "digest_message",
    "incident_link",
    "incident_message",
    "product_may_see",
    "story_key",
    "story_link",
    "story_message",
    "test_message",
]

#: How each kind of change opens a message.
CHANGES: Mapping[str, str] = {
    "opened": "New incident",
    "reopened": "Incident back",
    "unsnoozed": "Snooze over, still open",
    "updated": "Incident update",
}
#: What each source counts.
_UNITS: Mapping[str, str] = {
    "cases": "cases",
    "events": "events",
    "detections": "automated detections",
}
_SEVERITY_WORDS: Mapping[str, str] = {"low": "Low", "medium": "Medium", "high": "High"}
#: Sources whose incidents are made of cases (so Case Explorer can list them).
_CASE_SOURCES = ("cases", "detections")


def _role(role: Role | str) -> Role:
    return access.role_of(role)


def _slice_key(row: Mapping[str, Any]) -> str:
    return str(row.get("slice_key") or row.get("slice") or "all")


def _last_day(row: Mapping[str, Any]) -> date:
    """The last day the incident covers so far (a weekly point covers its week)."""
    end: datetime = row["end"]
    return end.date() + timedelta(days=6 if row.get("freq") == "weekly" else 0)


def _p(row: Mapping[str, Any]) -> float:
    return float(10.0 ** -float(row["score"]))


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def product_may_see(row: Mapping[str, Any]) -> bool:
    """Whether an incident may be told to a product subscriber: its peak is at least
    :data:`~analytics.access.suppression.SUPPRESSION_THRESHOLD` (the message never
    carries the count; naming a slice whose peak was smaller would point at a small cell).

    >>> product_may_see({"peak_value": 12.0}), product_may_see({"peak_value": 9.0})
    (True, False)
    """
    peak = _finite(row.get("peak_value"))
    return peak is not None and peak >= SUPPRESSION_THRESHOLD


def incident_link(row: Mapping[str, Any], *, role: Role | str, base_url: str) -> str:
    """Where a subscriber of ``role`` opens the incident: the Anomalies page on the week
    of its last day, with the incident picked (roles that may see cases), else the
    weekly brief of that week (Reports).

    >>> row = {"slice_key": "category=spam|region=FL", "source": "cases", "freq": "daily",
    ...        "end": datetime(2026, 11, 18)}
    >>> incident_link(row, role="associate", base_url="http://lookout:8501/")
    'http://lookout:8501/anomalies?week=2026-W47&anomalies.incident=category%3Dspam%7Cregion%3DFL&anomalies.source=cases'
    >>> incident_link(row, role="product", base_url="http://lookout:8501")
    'http://lookout:8501/reports?week=2026-W47'
    """
    week = iso_week(row["end"].date())
    base = base_url.rstrip("/")
    if access.allowed(role, "cases"):
        query = {
            "week": week,
            "anomalies.incident": _slice_key(row),
            "anomalies.source": str(row.get("source") or "cases"),
        }
        return f"{base}/anomalies?{urlencode(query)}"
    return f"{base}/reports?{urlencode({'week': week})}"


def _cases_link(row: Mapping[str, Any], *, base_url: str) -> str:
    """The incident's cases in Case Explorer (its slice and days)."""
    query = {
        "cases.slice": _slice_key(row),
        "cases.opened_from": row["start"].date().isoformat(),
        "cases.opened_to": _last_day(row).isoformat(),
    }
    return f"{base_url.rstrip('/')}/cases?{urlencode(query)}"


def _what(row: Mapping[str, Any]) -> str:
    """``Spam · FL cases``; the whole platform reads ``All cases``."""
    unit = _UNITS.get(str(row.get("source")), "cases")
    return f"{format_slice(_slice_key(row))} {unit}"


def _peak_when(row: Mapping[str, Any]) -> str:
    peak: date = row["peak_ts"].date()
    if row.get("freq") == "weekly":
        return f"in the week of {format_days(peak, peak + timedelta(days=6))}"
    return f"on {format_days(peak, peak)}"


def _size(row: Mapping[str, Any]) -> str:
    """How far the peak is from what was expected, in words: ``3.0 times as many``,
    ``93% fewer``; empty when nothing was expected."""
    peak, expected = _finite(row.get("peak_value")), _finite(row.get("expected"))
    if peak is None or expected is None or expected <= 0:
        return ""
    if peak >= expected:
        return f"{peak / expected:.1f} times as many"
    return f"{(1 - peak / expected) * 100:.0f}% fewer"


def _span(row: Mapping[str, Any]) -> str:
    """Since when: ``began on 16 Nov, 3 days so far (16–18 Nov)``; weekly incidents in
    weeks (``began in the week of 9 Nov, 2 weeks so far (9–22 Nov)``)."""
    first, last = row["start"].date(), _last_day(row)
    days = (last - first).days + 1
    weekly = row.get("freq") == "weekly"
    began = f"began {'in the week of ' if weekly else 'on '}{format_days(first, first)}"
    size, unit = (days // 7, "week") if weekly else (days, "day")
    if size <= 1:
        return began
    return f"{began}, {size} {unit}s so far ({format_days(first, last)})"


def _headline(row: Mapping[str, Any], *, product: bool) -> str:
    """The sentence of what happened and how big (no counts for product)."""
    way = "rose" if row.get("direction", "up") == "up" else "fell"
    if product:
        unusual = "above" if way == "rose" else "below"
        return f"{_what(row)} {way} well {unusual} the expected level {_peak_when(row)}"
    peak = format_count(_finite(row.get("peak_value")))
    expected = _finite(row.get("expected"))
    text = f"{_what(row)} {way} to {peak} {_peak_when(row)}"
    if expected is not None:
        text += f" against {format_mean(expected)} expected"
        size = _size(row)
        text += f", {size}" if size else ""
    return text


def _p_words(row: Mapping[str, Any]) -> str:
    """``p < 0.001``, ``p = 0.003``."""
    p = format_p(_p(row))
    return f"p {p}" if p.startswith("<") else f"p = {p}"


def _severity(row: Mapping[str, Any]) -> str:
    return _SEVERITY_WORDS.get(str(row.get("severity")), "Unrated")


def incident_message(
    row: Mapping[str, Any], *, role: Role | str, base_url: str, change: str = "opened"
) -> Message:
    """The message telling a subscriber of ``role`` about a stored incident.

    Parameters
    ----------
    row
        A row of the ``incidents`` table (:class:`analytics.core.models.StoredIncident`):
        ``id``, ``slice_key``, ``source``, ``freq``, ``direction``, ``start``, ``end``,
        ``peak_ts``, ``peak_value``, ``expected``, ``score``, ``severity``.
    role
        Whose view the message is written for (see the module's docstring).
    base_url
        Lookout's address, for the link.
    change
        What happened to it (:data:`CHANGES`): ``opened``, ``reopened``, ``unsnoozed``.

    Examples
    --------
    >>> t = datetime(2026, 11, 16)
    >>> row = {"id": 7, "slice_key": "category=spam", "source": "cases", "freq": "daily",
    ...        "direction": "up", "start": t, "end": t, "peak_ts": t, "peak_value": 120.0,
    ...        "expected": 40.0, "score": 8.0, "severity": "high"}
    >>> incident_message(row, role="leadership", base_url="http://lookout").subject
    'High: Spam cases rose to 120 on 16 Nov against 40.0 expected, 3.0 times as many'
    >>> incident_message(row, role="product", base_url="http://lookout").subject
    'High: Spam cases rose well above the expected level on 16 Nov'
    """
    role = _role(role)
    if change not in CHANGES:
        raise ValueError(f"a change is one of {', '.join(CHANGES)}, not {change!r}")
    product = not access.allowed(role, "aggregates")
    if product and not product_may_see(row):
        raise access.AccessDenied(
            "the product role is not told of an incident whose peak is below "
            f"{SUPPRESSION_THRESHOLD}"
        )
    severity = _severity(row)
    headline = _headline(row, product=product)
    lines = [
        f"{CHANGES[change]}, {severity.lower()} severity: {headline}.",
        f"It {_span(row)}; {_p_words(row)}.",
    ]
    link = incident_link(row, role=role, base_url=base_url)
    extra: list[tuple[str, str]] = []
    if product:
        lines.append("Counts are left out, as in the product brief.")
        label = "The weekly brief in Lookout"
    elif access.allowed(role, "cases"):
        label = "The incident in Lookout"
        if str(row.get("source")) in _CASE_SOURCES:
            extra.append(("Its cases in Case Explorer", _cases_link(row, base_url=base_url)))
    else:
        label = "The weekly brief in Lookout"
    text = "\n".join([*lines, *(f"{name}: {url}" for name, url in extra)])
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    links = [(label, link), *extra]
    body += "<p>" + " · ".join(_anchor(name, url) for name, url in links) + "</p>"
    return Message(
        kind="incident",
        subject=f"{severity}: {headline}",
        text=text,
        html=body,
        link=link,
        fields=_fields(row, change=change, product=product),
    )


def _anchor(name: str, url: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(name)}</a>'


def _fields(row: Mapping[str, Any], *, change: str, product: bool) -> dict[str, Any]:
    """The numbers behind an incident message, for receivers reading JSON (no counts
    for product)."""
    fields: dict[str, Any] = {
        "incident_id": int(row["id"]) if row.get("id") is not None else None,
        "change": change,
        "slice": format_slice(_slice_key(row)),
        "source": str(row.get("source") or "cases"),
        "frequency": str(row.get("freq") or "daily"),
        "direction": str(row.get("direction") or "up"),
        "severity": str(row.get("severity") or ""),
        "first_day": row["start"].date().isoformat(),
        "last_day": _last_day(row).isoformat(),
        "peak_day": row["peak_ts"].date().isoformat(),
        "p_value": _p(row),
    }
    if not product:
        fields["peak"] = _finite(row.get("peak_value"))
        fields["expected"] = _finite(row.get("expected"))
    return {k: v for k, v in fields.items() if v is not None}


def digest_message(
    rows: Sequence[Mapping[str, Any]],
    *,
    role: Role | str,
    base_url: str,
    since: datetime,
    now: datetime,
    timezone: str = "UTC",
) -> Message:
    """One message grouping the incidents opened or reopened between ``since`` and
    ``now``: a line per incident (most severe first, then by score), each written as
    :func:`incident_message` writes its first sentence for ``role``, with its link.
    Incidents a product subscriber may not be told of (:func:`product_may_see`) are
    left out. ``since`` and ``now`` are naive UTC, written in the subscriber's
    ``timezone`` (an IANA name).

    >>> t = datetime(2026, 11, 16)
    >>> row = {"id": 7, "slice_key": "category=spam", "source": "cases", "freq": "daily",
    ...        "direction": "up", "start": t, "end": t, "peak_ts": t, "peak_value": 120.0,
    ...        "expected": 40.0, "score": 8.0, "severity": "high"}
    >>> m = digest_message([row], role="associate", base_url="http://lookout",
    ...                    since=t, now=t + timedelta(hours=6))
    >>> m.subject
    'Lookout digest: 1 incident, 1 high, since 16 Nov 2026 00:00 UTC'
    """
    role = _role(role)
    product = not access.allowed(role, "aggregates")
    shown = [r for r in rows if not product or product_may_see(r)]
    order = {"high": 0, "medium": 1, "low": 2}
    shown.sort(
        key=lambda r: (order.get(str(r.get("severity")), 3), -float(r["score"]), _slice_key(r))
    )
    high = sum(str(r.get("severity")) == "high" for r in shown)
    count = f"{len(shown)} incident{'' if len(shown) == 1 else 's'}"
    period = f"since {_moment(since, timezone)}"
    subject = f"Lookout digest: {count}{f', {high} high' if high else ''}, {period}"
    base = base_url.rstrip("/")
    link = f"{base}/anomalies" if access.allowed(role, "cases") else f"{base}/reports"
    of_them = f", {high} of them high severity" if high else ""
    lines = [f"{count} opened or back {period} (to {_moment(now, timezone)}){of_them}:"]
    items: list[tuple[str, str]] = []
    for row in shown:
        sentence = f"{_severity(row)}: {_headline(row, product=product)}; {_span(row)}."
        items.append((sentence, incident_link(row, role=role, base_url=base_url)))
    if not items:
        lines = [f"No new incident {period} (to {_moment(now, timezone)})."]
    text = "\n".join([*lines, *(f"- {s} {url}" for s, url in items)])
    body = f"<p>{html.escape(lines[0])}</p>"
    if items:
        body += (
            "<ul>"
            + "".join(f"<li>{html.escape(s)} {_anchor('Open', url)}</li>" for s, url in items)
            + "</ul>"
        )
    body += f"<p>{_anchor('Lookout', link)}</p>"
    return Message(
        kind="digest",
        subject=subject,
        text=text,
        html=body,
        link=link,
        fields={
            "since": since.isoformat(),
            "until": now.isoformat(),
            "incidents": len(shown),
            "high": high,
        },
    )


def _moment(moment: datetime, timezone: str) -> str:
    """A naive UTC moment in ``timezone``, to the minute: ``18 Nov 2026 09:00 Europe/Paris``.

    >>> t = datetime(2026, 11, 18, 8)
    >>> _moment(t, "Europe/Paris"), _moment(t, "UTC")
    ('18 Nov 2026 09:00 Europe/Paris', '18 Nov 2026 08:00 UTC')
    """
    if timezone == "UTC":
        return format_moment(moment)
    local = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    return f"{format_day(local.date())} {local:%H:%M} {timezone}"


def test_message(name: str, *, link: str | None = None) -> Message:
    """The message ``subscriptions test NAME`` sends: it says it is a test and that no
    incident is behind it.

    >>> test_message("leads").subject
    'Lookout test message for the subscription “leads”'
    """
    text = (
        f"This is a test from Lookout: the subscription “{name}” is set up and its channel "
        "works. No incident is behind this message; nothing needs doing."
    )
    body = f"<p>{html.escape(text)}</p>"
    if link:
        body += f"<p>{_anchor('Lookout', link)}</p>"
    return Message(
        kind="test",
        subject=f"Lookout test message for the subscription “{name}”",
        text=text,
        html=body,
        link=link,
        fields={"subscription": name},
    )


test_message.__test__ = False  # type: ignore[attr-defined]  # a builder, not a pytest test


# --------------------------------------------------------------------------- the week's story


#: What a role needs to open each page a story item links to (as
#: :mod:`analytics.reports.story` decides its links); any other page: Reports.
_PAGE_NEEDS: Mapping[str, str] = {
    "pages/trends.py": "aggregates",
    "pages/anomalies.py": "cases",
    "pages/emerging.py": "cases",
    "pages/cases.py": "cases",
}
#: The story items a product subscriber may be sent: those of the product brief's story.
_PRODUCT_KINDS = frozenset({"surface", "topic"})
_STORY_WORDS: Mapping[str, str] = {
    "topic": "Emerging topic",
    "ring": "Growing ring",
    "surface": "Product surface",
    "incident": "Incident",
    "mover": "Mover",
    "sla": "SLA",
}


def story_link(item: StoryItem, *, role: Role | str, base_url: str) -> tuple[str, str]:
    """Where a subscriber of ``role`` opens a story item's evidence, and how the link
    reads: the item's page with its query when ``role`` may open it, else the weekly
    brief of the item's week (Reports)."""
    base = base_url.rstrip("/")
    query = dict(item.params)
    needs = _PAGE_NEEDS.get(item.page)
    if needs is not None and access.allowed(role, needs):
        page = item.page.removeprefix("pages/").removesuffix(".py")
        return f"{base}/{page}?{urlencode(query)}", item.link
    week = {"week": query["week"]} if "week" in query else {}
    label = "The product brief" if _role(role) == Role.product else "The weekly brief"
    return f"{base}/reports?{urlencode(week)}", label


def story_key(item: StoryItem) -> str:
    """What names a story item within its week, for the outbox key: the topic's phrase
    (``topic-<hash>``: its cluster number may change when the topics are recomputed), the
    ring's id (``ring-12``), else the kind and a hash of the sentence.

    >>> from analytics.reports.story import StoryItem
    >>> ring = StoryItem("ring", 1, 3.0, "Growing ring of 12 linked accounts ...", "",
    ...     "pages/emerging.py", (("week", "2026-W17"), ("emerging.ring", "12")), "Rings")
    >>> story_key(ring)
    'ring-12'
    """
    query = dict(item.params)
    if item.kind == "ring" and "emerging.ring" in query:
        return f"ring-{query['emerging.ring']}"
    text = item.text
    if item.kind == "topic" and "“" in text and "”" in text:
        text = text[text.index("“") : text.index("”") + 1]
    return f"{item.kind}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def story_message(
    item: StoryItem, *, role: Role | str, base_url: str, period: str | None = None
) -> Message:
    """The message telling a subscriber of ``role`` about one item of the week's story
    (:func:`analytics.reports.story.week_story`, the Overview page's): its sentence, as
    the Overview says it, the tests behind it, and the link to its evidence.

    A product subscriber is sent only an item of the product's own story (``week_story``
    with the product role: what the product brief shows, already suppressed); any other
    kind is refused with :class:`~analytics.access.roles.AccessDenied`. ``period`` (the
    week's days in words) goes in the message when given.

    >>> from analytics.reports.story import StoryItem
    >>> topic = StoryItem("topic", 1, 4.0, "Emerging topic “gift cards” (a new topic): 13 "
    ...     "cases in the last 7 days against 10 in the 83 days before.", "q = 0.001",
    ...     "pages/emerging.py", (("week", "2026-W17"), ("emerging.cluster", "30")),
    ...     "Emerging threats")
    >>> m = story_message(topic, role="associate", base_url="http://lookout")
    >>> m.subject
    'Emerging topic “gift cards” (a new topic)'
    >>> m.link
    'http://lookout/emerging?week=2026-W17&emerging.cluster=30'
    >>> story_message(topic, role="admin", base_url="http://lookout").link
    'http://lookout/reports?week=2026-W17'
    """
    role = _role(role)
    if role == Role.product and item.kind not in _PRODUCT_KINDS:
        raise access.AccessDenied(
            f"the product role is sent only the product brief's story, not a {item.kind}"
        )
    link, label = story_link(item, role=role, base_url=base_url)
    words = _STORY_WORDS.get(item.kind, item.kind)
    head = item.text.partition(":")[0].strip()
    if not head or len(head) > 120 or head == item.text:
        subject = f"{words} this week"
    else:
        subject = head if head.startswith(words.split()[0]) else f"{words}: {head}"
    week = dict(item.params).get("week", "")
    lines = [item.text]
    if item.note:
        lines.append(f"Behind it: {item.note}.")
    told = f"the week of {period}" if period else (week or "this week")
    lines.append(f"From the story of {told} on Lookout's Overview page.")
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    body += f"<p>{_anchor(label, link)}</p>"
    fields: dict[str, Any] = {
        "story_kind": item.kind,
        "week": week,
        "severity": item.severity,
        "rank": item.rank,
        "item": story_key(item),
    }
    return Message(
        kind="story", subject=subject, text="\n".join(lines), html=body, link=link, fields=fields
    )


#: The most characters of a brief's own HTML an email carries; a larger brief (its charts
#: make it so: plotly.js is inline) is sent as its headline and a link to Reports. Many
#: mail readers cut an HTML body past about 100 kB.
BRIEF_HTML_MOST = 100_000


def brief_message(brief: Brief, *, base_url: str, html_body: str | None = None) -> Message:
    """The weekly digest: ``brief``'s Headline (its story first, the same sentences as
    the Overview page, then the week's KPIs), with a link to the brief on the Reports
    page. ``html_body`` (the brief's own HTML, :func:`analytics.reports.render_html`) is
    the email's HTML when it is at most :data:`BRIEF_HTML_MOST` characters; else the
    HTML is the headline and the link."""
    headline = brief.section("headline") or (brief.sections[0] if brief.sections else None)
    sentences = list(headline.sentences) if headline is not None else []
    query = {"week": brief.label, "reports.audience": brief.audience}
    link = f"{base_url.rstrip('/')}/reports?{urlencode(query)}"
    who = "product teams" if brief.audience == "product" else "leadership"
    intro = f"The weekly brief for {who}, {brief.label} ({brief.period}):"
    text = "\n".join([intro, *(f"- {s}" for s in sentences), f"The whole brief: {link}"])
    if html_body is not None and len(html_body) <= BRIEF_HTML_MOST:
        body = html_body
    else:
        body = (
            f"<p>{html.escape(intro)}</p><ul>"
            + "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
            + f"</ul><p>{_anchor('The whole brief in Lookout', link)}</p>"
        )
    return Message(
        kind="digest",
        subject=f"Lookout weekly brief for {who}: {brief.label} ({brief.period})",
        text=text,
        html=body,
        link=link,
        fields={"week": brief.label, "audience": brief.audience, "sentences": len(sentences)},
    )
