"""One pass of the watch (analytics.alerts.watch) on a copy of the small demo, with a
webhook subscription to a real HTTP receiver on loopback: the first pass stores and
delivers one message per new incident, a second pass stores and sends nothing new; a
receiver answering 500 delays the messages, the next pass delivers each once; and the
``watch`` command's exit codes and one-line reasons (typer's CliRunner, in process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from analytics.access import Viewer
from analytics.alerts import incidents, subscriptions, watch
from analytics.cli import app
from analytics.core.database import make_engine
from analytics.core.models import Delivery, Role, StoredIncident, init_db
from tests.alert_receivers import HttpReceiver, http_receiver
from tests.helpers import HANG_S, copy_small_demo

#: When the passes happen (the small demo's data ends on 30 Apr 2026).
NOW = datetime(2026, 5, 1, 6, 0)
BASE = "http://lookout.test"
#: The small demo's two current alerted incidents (weekly, the week of 20 Apr).
SLICES = ["category=other|specialty=dentistry", "category=other|specialty=dermatology"]


@pytest.fixture
def demo_url(small_demo_file, tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("LOOKOUT_SECRETS", str(tmp_path / "secrets.toml"))
    url = copy_small_demo(small_demo_file, tmp_path)
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", url)
    return url


@pytest.fixture
def engine(demo_url: str) -> Iterator[Engine]:
    eng = make_engine(demo_url)
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def hook(engine: Engine) -> Iterator[HttpReceiver]:
    """A receiver, and an associate's webhook subscription to every anomaly."""
    with http_receiver() as receiver:
        subscriptions.add(engine, name="oncall", channel="webhook", target=receiver.url,
                          role=Role.associate, created_by="admin", now=NOW)  # fmt: skip
        yield receiver


def _count(engine: Engine, table: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_the_first_pass_delivers_one_message_per_incident_the_second_nothing(engine, hook) -> None:
    first = watch.run_once(engine, now=NOW, base_url=BASE, timeout_s=5.0)
    assert first.summary() == (
        "data to 2026-04-30: 2 alerted; 2 opened, 0 reopened, 0 unsnoozed, 0 updated; "
        "2 queued; 2 sent, 0 to retry, 0 failed"
    )
    assert first.ok
    stored = incidents.list_incidents(engine, role=Role.associate)
    assert stored.select("slice", "freq", "state").rows() == [
        (SLICES[0], "weekly", "open"), (SLICES[1], "weekly", "open")
    ]  # fmt: skip
    assert len(hook.requests) == 2
    told = sorted(r.json["fields"]["incident_id"] for r in hook.requests)
    assert told == sorted(stored["id"].to_list())
    assert all(r.json["link"].startswith(f"{BASE}/") for r in hook.requests)
    assert len(set(hook.acknowledged_keys)) == 2 and hook.repeats == []

    second = watch.run_once(engine, now=NOW + timedelta(minutes=15), base_url=BASE, timeout_s=5.0)
    assert (second.scanned, second.opened, second.updated, second.queued, second.sent) == (
        2, 0, 0, 0, 0
    )  # fmt: skip
    assert len(hook.requests) == 2
    assert (_count(engine, StoredIncident), _count(engine, Delivery)) == (2, 2)


def test_a_receiver_answering_500_delays_the_messages_the_next_pass_delivers_each_once(
    engine, hook
) -> None:
    hook.script([500, 500])
    first = watch.run_once(engine, now=NOW, base_url=BASE, timeout_s=5.0)
    assert (first.opened, first.queued, first.sent, first.retrying, first.ok) == (
        2, 2, 0, 2, False
    )  # fmt: skip
    assert hook.acknowledged_keys == []
    # Past the backoff, the next pass sends both; the stored incidents are not repeated.
    later = watch.run_once(engine, now=NOW + timedelta(hours=2), base_url=BASE, timeout_s=5.0)
    assert (later.opened, later.queued, later.sent, later.retrying) == (0, 0, 2, 0)
    assert len(hook.acknowledged_keys) == 2 and hook.repeats == []


def test_a_pass_over_a_resolved_incident_that_stays_as_it_was_says_nothing(engine, hook) -> None:
    watch.run_once(engine, now=NOW, base_url=BASE, timeout_s=5.0)
    first = incidents.list_incidents(engine, role=Role.associate).row(0, named=True)
    incidents.resolve(engine, first["id"], viewer=Viewer("ann", Role.associate), version=1)
    again = watch.run_once(engine, now=NOW + timedelta(hours=1), base_url=BASE, timeout_s=5.0)
    assert (again.reopened, again.queued, again.sent) == (0, 0, 0)
    assert incidents.read_incident(engine, first["id"], role=Role.associate)["state"] == "resolved"


def test_an_incident_out_of_its_snooze_is_told_again_once(engine, hook) -> None:
    watch.run_once(engine, now=NOW, base_url=BASE, timeout_s=5.0)
    first = incidents.list_incidents(engine, role=Role.associate).row(0, named=True)
    until = datetime(2099, 1, 1)  # in the future whatever the clock says
    incidents.snooze(engine, first["id"], until, viewer=Viewer("ann", Role.associate), version=1)
    quiet = watch.run_once(engine, now=until - timedelta(hours=1), base_url=BASE, timeout_s=5.0)
    assert (quiet.unsnoozed, quiet.queued, quiet.sent) == (0, 0, 0)
    back = watch.run_once(engine, now=until, base_url=BASE, timeout_s=5.0)
    assert (back.unsnoozed, back.queued, back.sent) == (1, 1, 1)
    assert len(hook.requests) == 3
    assert hook.requests[-1].json["fields"]["incident_id"] == first["id"]
    after = watch.run_once(engine, now=until + timedelta(hours=1), base_url=BASE, timeout_s=5.0)
    assert (after.unsnoozed, after.queued, after.sent) == (0, 0, 0)


def test_a_second_snooze_that_runs_out_is_told_again_too(engine, hook) -> None:
    """Each return of an incident is one message: the second time out of a snooze is
    not mistaken for a repeat of the first (its key carries the incident's version)."""
    watch.run_once(engine, now=NOW, base_url=BASE, timeout_s=5.0)
    first = incidents.list_incidents(engine, role=Role.associate).row(0, named=True)
    ann = Viewer("ann", Role.associate)
    until = datetime(2099, 1, 1)
    incidents.snooze(engine, first["id"], until, viewer=ann, version=first["version"])
    assert watch.run_once(engine, now=until, base_url=BASE, timeout_s=5.0).sent == 1
    now = incidents.read_incident(engine, first["id"], role=Role.associate)
    later = datetime(2099, 2, 1)
    incidents.snooze(engine, first["id"], later, viewer=ann, version=now["version"])
    again = watch.run_once(engine, now=later, base_url=BASE, timeout_s=5.0)
    assert (again.unsnoozed, again.queued, again.sent) == (1, 1, 1)
    assert len(hook.requests) == 4
    assert len(hook.acknowledged_keys) == 4


# --------------------------------------------------------------------------- the command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_watch_command_exits_0_when_it_delivered_and_when_nothing_was_due(engine, hook) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["watch", "--base-url", BASE, "--timeout", "5"])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip().endswith("2 queued; 2 sent, 0 to retry, 0 failed")
    again = runner.invoke(app, ["watch", "--base-url", BASE])
    assert again.exit_code == 0, again.output
    assert again.stdout.strip().endswith("0 queued; 0 sent, 0 to retry, 0 failed")
    assert len(hook.requests) == 2


def test_watch_command_fails_with_one_line_when_a_delivery_fails_or_waits(engine, hook) -> None:
    runner = CliRunner()
    hook.script([404, 503])  # a refusal fails for good; a 503 is retried later
    done = runner.invoke(app, ["watch", "--base-url", BASE, "--timeout", "5"])
    assert done.exit_code == 1
    assert done.stderr == (
        "error: 1 message(s) failed for good (their reasons are on the Admin page)\n"
    )
    assert done.stdout.strip().endswith("2 queued; 0 sent, 1 to retry, 1 failed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--every", "soon"],
            "error: --every takes an interval such as 30s, 15m or 1h, not 'soon'",
        ),
        (["--every", "0m"], "error: --every takes an interval longer than zero"),
        (["--base-url", "lookout.test"], "error: --base-url is an http:// or https:// address"),
    ],
)
def test_watch_command_refuses_bad_input_with_exit_2(demo_url, args, message) -> None:
    done = CliRunner().invoke(app, ["watch", *args])
    assert done.exit_code == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1


def test_watch_command_says_when_the_database_is_unreachable(monkeypatch) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/nowhere"
    monkeypatch.setenv("LOOKOUT_DATABASE_URL", url)
    done = CliRunner().invoke(app, ["watch"])
    assert done.exit_code != 0
    assert done.stderr.startswith("error: cannot open postgresql+psycopg://")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.output


@pytest.mark.slow
def test_python_m_analytics_watch_in_its_own_process(engine, hook) -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-m", "analytics", "watch", "--base-url", BASE, "--timeout", "5"],
        cwd=root, env=dict(os.environ), capture_output=True, text=True, timeout=HANG_S,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("2 queued; 2 sent, 0 to retry, 0 failed")
    assert len(hook.acknowledged_keys) == 2
