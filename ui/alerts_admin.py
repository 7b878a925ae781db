"""The Admin page's alert sections (issue 19): the subscriptions (a table, a form that
adds one, a test message and removal), and the deliveries that failed (with a retry).

Everything goes through :mod:`analytics.alerts.subscriptions` and
:mod:`analytics.alerts.outbox`: reads on the pages' reader (:func:`ui.data.engine`),
writes on the writer (:func:`ui.data.writer`), each audited there. A channel's secret
is never shown: the table has no URL, no address and no key; the URL field is typed as
a password; a signed webhook's signing key is shown once, right after it was made, and
dropped from the session as it is shown.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

import polars as pl
import streamlit as st

from analytics.access import Viewer
from analytics.access.roles import AccessDenied
from analytics.alerts import outbox, secrets, subscriptions, watch
from analytics.core.models import ChannelKind, Role
from analytics.present import exports
from analytics.present.formatting import humanise
from ui import data
from ui.widgets import plain

__all__ = [
    "CHANNELS",
    "failures_section",
    "failures_table",
    "subscriptions_section",
    "subscriptions_table",
]

#: The channels in words.
CHANNELS: dict[str, str] = {
    ChannelKind.slack.value: "Slack (incoming webhook)",
    ChannelKind.webhook.value: "Signed webhook (JSON)",
    ChannelKind.email.value: "Email",
}
_FLASH = "alerts_admin_flash"
_FIELDS = (
    "sub_name", "sub_target", "sub_what", "sub_severity", "sub_direction", "sub_role",
    "sub_slices", "sub_digest", "sub_timezone",
)  # fmt: skip
#: The errors that carry a one-line reason meant for the person (no secret in them).
_SAID = (subscriptions.SubscriptionError, secrets.SecretError, AccessDenied)


@functools.cache
def _timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _words(items: str | None) -> str:
    return ", ".join(humanise(w) for w in (items or "").split(",") if w)


def subscriptions_table(found: pl.DataFrame) -> pl.DataFrame:
    """The subscriptions as the page shows them: in words, never a URL, an address or
    where a secret lives.

    >>> from datetime import datetime
    >>> rows = pl.DataFrame({
    ...     "name": ["oncall"], "channel": ["slack"], "secret_ref": ["secrets:oncall"],
    ...     "address": [None], "what": ["anomalies,rings"], "min_severity": ["high"],
    ...     "direction": ["up"], "role": ["associate"], "slices": [None],
    ...     "digest_hours": [6], "timezone": ["UTC"], "created_by": ["ann"],
    ...     "created_at": [datetime(2026, 5, 1)]})
    >>> subscriptions_table(rows).row(0)[:8]
    ('oncall', 'Slack (incoming webhook)', 'Anomalies, Rings', 'High', 'Up', 'Associate', 'Every slice', 'Digest every 6 h')
    """  # noqa: E501
    rows = [
        {
            "name": r["name"],
            "channel": CHANNELS.get(r["channel"], humanise(r["channel"])),
            "what": _words(r["what"]),
            "min_severity": humanise(r["min_severity"]),
            "direction": humanise(r["direction"]),
            "role": humanise(r["role"]),
            "slices": r["slices"] or "Every slice",
            "how": f"Digest every {r['digest_hours']} h" if r["digest_hours"] else "At once",
            "timezone": r["timezone"],
            "created_by": r["created_by"],
            "created_at": r["created_at"],
        }
        for r in found.iter_rows(named=True)
    ]
    schema: dict[str, Any] = {
        "name": pl.String, "channel": pl.String, "what": pl.String,
        "min_severity": pl.String, "direction": pl.String, "role": pl.String,
        "slices": pl.String, "how": pl.String, "timezone": pl.String,
        "created_by": pl.String, "created_at": pl.Datetime("us"),
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


_SUBSCRIPTION_COLUMNS: dict[str, Any] = {
    "name": "Name", "channel": "Channel", "what": "What", "min_severity": "Least severity",
    "direction": "Direction", "role": "Written for", "slices": "Slices", "how": "How",
    "timezone": "Time zone", "created_by": "Added by",
    "created_at": st.column_config.DatetimeColumn("Added (UTC)", format="D MMM YYYY HH:mm"),
}  # fmt: skip


def _flash() -> None:
    """What the last add left for this run (a signed webhook's key: this once only)."""
    shown = st.session_state.pop(_FLASH, None)
    if not shown:
        return
    message, key = shown
    with st.container(border=True):
        st.success(message, icon=":material/check_circle:")
        if key:
            st.code(key, language=None)
            st.caption(
                "The signing key: give it to the receiver, which checks X-Lookout-Signature "
                "with it; it is not shown again."
            )


def _add_form(viewer: Viewer) -> None:
    st.markdown("**Add a subscription**")
    channel = st.selectbox(
        "Channel", list(CHANNELS), format_func=CHANNELS.__getitem__, key="sub_channel"
    )
    with st.form("sub_add", border=True):
        left, right = st.columns(2)
        name = left.text_input(
            "Name", max_chars=48, key="sub_name", placeholder="e.g. oncall-slack"
        )
        if channel == ChannelKind.email.value:
            target = right.text_input(
                "Email address", max_chars=320, key="sub_target", placeholder="team@example.org"
            )
        else:
            target = right.text_input(
                "URL (or env:NAME for an environment variable)",
                type="password",
                max_chars=2000,
                key="sub_target",
                help="Kept in the secrets file, never in the database; not shown again.",
            )
        what = left.multiselect(
            "What", subscriptions.WHATS, default=["anomalies"], format_func=humanise,
            key="sub_what",
        )  # fmt: skip
        severity = right.selectbox(
            "Least severity", subscriptions.SEVERITIES, format_func=humanise, key="sub_severity"
        )
        direction = left.selectbox(
            "Direction", subscriptions.DIRECTIONS, index=2, format_func=humanise,
            key="sub_direction",
        )  # fmt: skip
        roles = [r.value for r in Role]
        role = right.selectbox(
            "Written for (role)", roles, index=roles.index(Role.leadership.value),
            format_func=humanise, key="sub_role",
            help="A product subscription carries only what the product brief may show.",
        )  # fmt: skip
        slices = left.text_input(
            "Only these slices (optional)", max_chars=400, key="sub_slices",
            placeholder="category=spam,region=FL",
            help="Dimension and value, comma-separated, e.g. `category=spam,region=FL`; "
            "`series=cases`, `series=events` or `series=detections` picks what was scanned "
            "(detections: a fall of a rule's or a model's output).",
        )  # fmt: skip
        digest = right.number_input(
            "Digest every N hours (0: each at once)", min_value=0, max_value=168, value=0,
            step=1, key="sub_digest",
        )  # fmt: skip
        zones = _timezones()
        timezone = left.selectbox(
            "Time zone", zones, index=zones.index("UTC") if "UTC" in zones else 0,
            key="sub_timezone",
        )  # fmt: skip
        submitted = st.form_submit_button("Add subscription", type="primary")
    if not submitted:
        return
    try:
        added = subscriptions.add(
            data.writer(), name=name.strip(), channel=channel, target=target, what=what,
            min_severity=severity, direction=direction, role=role, slices=slices or None,
            digest_hours=int(digest) or None, timezone=timezone, created_by=viewer,
        )  # fmt: skip
    except _SAID as exc:
        st.error(str(exc), icon=":material/error:")
        return
    except Exception as exc:  # noqa: BLE001 - a banner, never a traceback
        st.error(f"Cannot add the subscription ({type(exc).__name__}).")
        return
    for key in _FIELDS:
        st.session_state.pop(key, None)
    message = f"Added the subscription “{plain(added.row['name'])}”."
    if added.signing_key:
        message += " Its signing key is below: give it to the receiver; it is not shown again."
    st.session_state[_FLASH] = (message, added.signing_key)
    st.rerun()


def _actions(viewer: Viewer, names: list[str]) -> None:
    st.markdown("**Test or remove**")
    left, middle, right = st.columns([3, 2, 2], vertical_alignment="bottom")
    name = left.selectbox("Subscription", names, key="sub_chosen")
    if middle.button(
        "Send a test",
        key="sub_test",
        icon=":material/send:",
        help="Sends it now, with whatever else is due in the outbox (as the watch run would).",
    ):
        try:
            with st.spinner(f"Sending a test message to {name}…"):
                subscriptions.test(data.writer(), name, base_url=watch.base_url())
        except _SAID as exc:
            st.error(str(exc), icon=":material/error:")
        except Exception as exc:  # noqa: BLE001
            st.error(f"Cannot send the test message ({type(exc).__name__}).")
        else:
            st.success(f"Sent a test message to “{plain(name)}”.")
    sure = right.checkbox("Yes, remove it", key="sub_sure")
    if right.button("Remove", key="sub_remove", icon=":material/delete:"):
        if not sure:
            st.warning(f"Tick “Yes, remove it” to remove “{plain(name)}”.")
            return
        try:
            subscriptions.remove(data.writer(), name, by=viewer)
        except _SAID as exc:
            st.error(str(exc), icon=":material/error:")
            return
        except Exception as exc:  # noqa: BLE001
            st.error(f"Cannot remove the subscription ({type(exc).__name__}).")
            return
        st.session_state.pop("sub_sure", None)
        st.session_state.pop("sub_chosen", None)
        st.session_state[_FLASH] = (f"Removed the subscription “{plain(name)}”.", None)
        st.rerun()


def subscriptions_section(viewer: Viewer) -> None:
    """The subscriptions: who is told what, and how; add, test and remove them."""
    st.subheader("Subscriptions")
    st.caption(
        "Who is told of incidents, emerging topics, rings, escalations and digests, and "
        "how. Also `python -m analytics subscriptions …` on the server."
    )
    _flash()
    try:
        found = subscriptions.list_subscriptions(data.engine())
    except Exception as exc:  # noqa: BLE001
        st.error(f"Cannot read the subscriptions ({type(exc).__name__}).")
        return
    if found.is_empty():
        st.info("No subscription yet: add one below.", icon=":material/notifications_off:")
    else:
        st.dataframe(
            exports.neutralise(subscriptions_table(found)), hide_index=True, width="stretch",
            placeholder="–", column_config=_SUBSCRIPTION_COLUMNS, key="sub_table",
        )  # fmt: skip
        _actions(viewer, found["name"].to_list())
    _add_form(viewer)


def failures_table(found: pl.DataFrame) -> pl.DataFrame:
    """:func:`analytics.alerts.outbox.failures` as the page shows it (``kind``: the
    channel in words; ``state``: failed, or waiting for a retry).

    >>> from datetime import datetime
    >>> rows = pl.DataFrame({
    ...     "id": [3], "subscription": ["oncall"], "channel": ["slack"],
    ...     "subject": ["Spam up"], "state": ["pending"], "attempts": [2],
    ...     "last_error": ["HTTP 500"], "next_attempt_at": [datetime(2026, 5, 1, 8)],
    ...     "created_at": [datetime(2026, 5, 1, 7)]})
    >>> failures_table(rows).row(0)[:6]
    (3, 'oncall', 'Slack (incoming webhook)', 'Spam up', 'Will retry', 2)
    """
    return found.select(
        "id",
        "subscription",
        pl.col("channel").replace_strict(CHANNELS, default=pl.col("channel")).alias("kind"),
        "subject",
        pl.when(pl.col("state") == "failed")
        .then(pl.lit("Failed"))
        .otherwise(pl.lit("Will retry"))
        .alias("state"),
        "attempts",
        "last_error",
        "created_at",
        pl.when(pl.col("state") == "failed")
        .then(None)
        .otherwise(pl.col("next_attempt_at"))
        .alias("next_attempt_at"),
    )


_FAILURE_COLUMNS: dict[str, Any] = {
    "id": st.column_config.NumberColumn("#", format="%d", width=40),
    "subscription": "Subscription", "kind": "Channel", "subject": "Subject",
    "state": "State", "attempts": st.column_config.NumberColumn("Attempts", format="%d"),
    "last_error": "Last error",
    "created_at": st.column_config.DatetimeColumn("Queued (UTC)", format="D MMM YYYY HH:mm"),
    "next_attempt_at": st.column_config.DatetimeColumn(
        "Next try (UTC)", format="D MMM YYYY HH:mm"
    ),
}  # fmt: skip


def failures_section(viewer: Viewer) -> None:
    """The messages given up on, or waiting for a retry after an error; retry one."""
    st.subheader("Deliveries that failed")
    flash = st.session_state.pop("alerts_retry_flash", None)
    if flash:
        st.success(flash, icon=":material/check_circle:")
    try:
        found = outbox.failures(data.engine())
    except Exception as exc:  # noqa: BLE001
        st.error(f"Cannot read the outbox ({type(exc).__name__}).")
        return
    if found.is_empty():
        st.info("No delivery has failed.", icon=":material/check_circle:")
        return
    st.caption(
        "Failed: given up on. Will retry: the watch run tries again at the time shown. "
        "Retry puts a failed message back in the queue for the next run."
    )
    st.dataframe(
        exports.neutralise(failures_table(found)), hide_index=True, width="stretch",
        placeholder="–", column_config=_FAILURE_COLUMNS, key="failed_table",
    )  # fmt: skip
    failed = found.filter(pl.col("state") == "failed")
    if failed.is_empty():
        return
    labels = {
        int(r["id"]): f"#{r['id']} to {r['subscription']}: {r['subject']}"[:120]
        for r in failed.iter_rows(named=True)
    }
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    chosen = left.selectbox(
        "Message", list(labels), format_func=labels.__getitem__, key="failed_chosen"
    )
    if right.button("Retry", key="failed_retry", icon=":material/replay:"):
        try:
            done = outbox.retry(data.writer(), int(chosen))
        except Exception as exc:  # noqa: BLE001
            st.error(f"Cannot retry the message ({type(exc).__name__}).")
            return
        if not done:
            st.warning(f"Message #{chosen} is no longer failed; nothing to retry.")
            return
        data.audit(viewer, "delivery_retry", target=f"outbox message #{chosen}")
        st.session_state.pop("failed_chosen", None)
        st.session_state["alerts_retry_flash"] = (
            f"Message #{chosen} is queued again: the next watch run sends it."
        )
        st.rerun()
