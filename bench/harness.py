"""What every benchmark shares: the machine line, Markdown tables, timed child processes."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SPAWNED_AT",
    "Table",
    "machine",
    "median",
    "peak_rss_mib",
    "run_child",
    "run_watched",
    "seconds",
]

#: Environment variable through which a child learns when its parent started it.
SPAWNED_AT = "BENCH_SPAWNED_AT"


@dataclass
class Table:
    """One benchmark's results: a title, column names, rows of cells and notes."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        """Append a row; cells are shown with ``str``."""
        self.rows.append(tuple(str(c) for c in cells))

    def markdown(self) -> str:
        """The table as Markdown, preceded by its title and the machine it ran on.

        >>> t = Table("Demo", ("a", "b"))
        >>> t.add(1, "x")
        >>> print(t.markdown().split("\\n", 4)[4])
        | a | b |
        | --- | --- |
        | 1 | x |
        """
        lines = [f"### {self.title}", "", f"Machine: {machine()}.", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("| " + " | ".join("---" for _ in self.columns) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def machine() -> str:
    """Cores, memory, Python and Polars versions, and the current load, on one line."""
    import polars as pl

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {ram:.0f} GiB RAM, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, polars {pl.__version__}"
        f" (load average {os.getloadavg()[0]:.1f} when printed)"
    )


def median(values: Iterable[float]) -> float:
    """The median of some timings.

    >>> median([3.0, 1.0, 2.0])
    2.0
    """
    return float(statistics.median(list(values)))


def seconds(value: float | None, digits: int = 2) -> str:
    """A duration in seconds for a table cell ("–" when missing).

    >>> seconds(1.23456), seconds(None)
    ('1.23', '–')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB, since its last ``exec``.

    Read from ``VmHWM`` in ``/proc/self/status``: ``getrusage`` would report the
    parent's peak for a child started by a bigger process (it survives ``exec``).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(
    module: str, args: Sequence[str], *, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], float]:
    """Run ``python -m module args`` in a fresh process; its JSON report and wall time.

    The child prints its report as the last line of its standard output. The wall
    time runs from just before the process is spawned until it has exited.
    """
    child_env = dict(os.environ, **(env or {}))
    child_env[SPAWNED_AT] = repr(time.time())
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"python -m {module} {' '.join(args)} failed:\n{tail}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"python -m {module} printed no report")
    return json.loads(lines[-1]), wall


def _hwm_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_watched(
    cmd: Sequence[str], *, env: dict[str, str] | None = None, every: float = 0.1
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run a command; its result, wall time and peak memory (MiB, sampled every ``every`` s).

    The peak is the child's own ``VmHWM``, read while it runs: ``getrusage`` of children
    is a maximum over all children so far and includes what a child inherited at fork.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _hwm_mib(proc.pid) or 0.0)
            time.sleep(every)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
    return done, wall, peak
