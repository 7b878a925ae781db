"""Run the benchmarks and print a Markdown table of results.

Usage: ``python -m bench [--scale small|medium|large] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import platform
import sys

from bench import seeding


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scale", default="large", choices=["small", "medium", "large"])
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL URL for the PostgreSQL rows ('' to skip)",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"python {sys.version.split()[0]}"
    )
    print("| benchmark | seconds | peak RSS (MiB) | rows |")
    print("| --- | --- | --- | --- |")
    for row in seeding.run(scale=args.scale, postgres=args.postgres or None):
        print(f"| {row['name']} | {row['seconds']:.1f} | {row['peak_mib']:.0f} | {row['rows']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
