"""Escalation (issue 19): incidents that persist, subscriptions, channels, the outbox.

- :mod:`analytics.alerts.message`: the one shape of a message, whatever the channel;
- :mod:`analytics.alerts.incidents`: stored incidents and their life (open,
  acknowledged, snoozed, resolved, dismissed), each change audited;
- :mod:`analytics.alerts.subscriptions`: who is told what, and the messages each
  role may receive;
- :mod:`analytics.alerts.secrets`, :mod:`analytics.alerts.channels`: where a channel's
  secret lives, and sending over Slack-compatible webhooks, signed webhooks and SMTP;
- :mod:`analytics.alerts.outbox`: queued in the same transaction as the change, sent
  with retries, backoff and an idempotency key;
- :mod:`analytics.alerts.watch`: one pass of ``python -m analytics watch``.
"""
