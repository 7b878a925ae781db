"""Seeding speed: `python -m analytics seed` in a fresh process, timed end to end.

Target: the large scale (20M events, 1M cases, 1M accounts) in at most 3 minutes
and under 8 GB of memory on a 2-core machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from analytics import db

__all__ = ["run", "time_seed"]


def time_seed(url: str, scale: str, manifest: Path) -> dict[str, Any]:
    """Seed ``url`` at ``scale`` in a child process; wall time and the child's peak RSS."""
    env = dict(os.environ, LOOKOUT_DATABASE_URL=url)
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
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rows = db.table_counts(db.make_engine(url))["events"]
    return {"seconds": seconds, "peak_mib": peak_kib / 1024, "rows": f"{rows:,} events"}


def run(*, scale: str, postgres: str | None) -> list[dict[str, Any]]:
    """Seed SQLite (and PostgreSQL when given) at ``scale``."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        row = time_seed(url, scale, Path(tmp) / "gt.json")
        results.append({"name": f"seed {scale}, SQLite", **row})
        if postgres:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = db.make_engine(postgres)
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
