"""Seeding speed: `python -m analytics seed` in a fresh process, timed end to end.

Target: the large scale (20M events, 1M cases, 1M accounts) in at most 3 minutes
and under 8 GB of memory on a 2-core machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from analytics.core import database
from bench.harness import run_watched

__all__ = ["run", "time_seed"]


def time_seed(url: str, scale: str, manifest: Path) -> dict[str, Any]:
    """Seed ``url`` at ``scale`` in a child process; wall time and the child's peak RSS.

    The peak is sampled from the child itself (:func:`bench.harness.run_watched`), so
    it is this child's, not the largest of every child so far.
    """
    # seed also builds the snapshot (SQLite): keep it next to the manifest, not in data/
    env = dict(os.environ, LOOKOUT_DATABASE_URL=url, LOOKOUT_SNAPSHOT_DIR=str(manifest.parent))
    cmd = [
        sys.executable,
        "-m",
        "analytics",
        "seed",
        "--scale",
        scale,
        "--force",
        "--end",
        "2026-11-24",
        "--manifest",
        str(manifest),
    ]
    done, seconds, peak_mib = run_watched(cmd, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    rows = database.table_counts(database.make_engine(url))["events"]
    return {"seconds": seconds, "peak_mib": peak_mib, "rows": f"{rows:,} events"}


def run(*, scale: str, postgres: str | None) -> list[dict[str, Any]]:
    """Seed SQLite (and PostgreSQL when given) at ``scale``."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        row = time_seed(url, scale, Path(tmp) / "gt.json")
        results.append({"name": f"seed {scale}, SQLite", **row})
        if postgres:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = database.make_engine(postgres)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                pg = make_url(postgres).update_query_dict({"options": f"-csearch_path={schema}"})
                row = time_seed(pg.render_as_string(hide_password=False), scale, Path(tmp) / "g")
                results.append({"name": f"seed {scale}, PostgreSQL", **row})
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return results
