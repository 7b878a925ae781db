"""Run every page once through AppTest and print, as JSON, what each shows: its exceptions,
its plain-words offences and every text a person reads. Run in a process of its own
(``python -m tests.taxonomy_walk``), so that the taxonomy of ``LOOKOUT_SOURCE_MAP`` is the
one in force from the first import (the frames' dtypes follow it)."""

from __future__ import annotations

import json

from analytics import access
from analytics.core.models import Role
from tests.helpers import app_as
from tests.test_plain_words import texts, walk
from ui import nav


def main() -> None:
    shown = {}
    for path, _title, _icon, capability in nav.PAGES:
        role = next(
            r for r in (Role.leadership, Role.associate, Role.admin)
            if access.allowed(r, capability)
        )  # fmt: skip
        at = app_as(role.value)
        at.switch_page(path)
        at.run()
        shown[path] = {
            "exceptions": [str(e.value)[:500] for e in at.exception],
            "offences": walk(at),
            "texts": [t.text for t in texts(at)],
        }
    print(json.dumps(shown))


if __name__ == "__main__":
    main()
