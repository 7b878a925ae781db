"""The one shape of a message Lookout sends, whatever the channel.

A :class:`Message` is written once (by :mod:`analytics.alerts.subscriptions` for the
subscriber's role), stored in the outbox as JSON, and rendered by each channel
(:mod:`analytics.alerts.channels`): Slack-compatible webhooks send ``text``; signed
webhooks send the whole message as JSON; email sends ``text`` and ``html``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["KINDS", "Message"]

#: What a message is about.
KINDS = ("incident", "escalation", "digest", "story", "test")


@dataclass(frozen=True)
class Message:
    """A message: a one-line ``subject``, a plain-text body, an HTML body, a link into
    Lookout and the numbers behind it (``fields``, for receivers that read JSON).

    >>> m = Message("incident", "Spam up 3x", "Spam: 120 cases (expected 40)", "<p>Spam</p>",
    ...             link="http://lookout/anomalies", fields={"peak": 120})
    >>> Message.from_json(m.to_json()) == m
    True
    """

    kind: str
    subject: str
    text: str
    html: str
    link: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a message is one of {', '.join(KINDS)}, not {self.kind!r}")
        if "\n" in self.subject or "\r" in self.subject:
            raise ValueError("a message's subject is one line")

    def to_json(self) -> str:
        """The message as JSON text (keys sorted: the same message, the same text)."""
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Message:
        """The message :meth:`to_json` wrote."""
        data = json.loads(text)
        return cls(
            kind=str(data["kind"]),
            subject=str(data["subject"]),
            text=str(data["text"]),
            html=str(data["html"]),
            link=data.get("link"),
            fields=dict(data.get("fields") or {}),
        )
