"""Where a channel's secret lives: the environment or the secrets file, never the database.

A subscription stores a *reference* (``secret_ref``), never the secret itself:

- ``env:NAME``: the environment variable ``NAME``;
- ``secrets:NAME``: the entry ``NAME`` of the table ``[subscriptions]`` in the secrets
  file, a TOML file at ``LOOKOUT_SECRETS`` (default ``data/secrets.toml``), readable by
  its owner only (mode 0600)::

      [subscriptions]
      oncall = "https://hooks.slack.com/services/..."
      partner = "https://partner.example/lookout"
      partner_signing = "9f2c..."

A signed webhook's signing key sits next to its URL: :func:`signing_ref` names it
(``secrets:NAME`` → ``secrets:NAME_signing``; ``env:NAME`` → ``env:NAME_SIGNING``).

Values never appear in an exception's message nor in a log line: errors name the
reference only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

from analytics.core.database import PROJECT_ROOT

__all__ = [
    "DEFAULT_SECRETS_FILE",
    "SecretError",
    "SecretMissing",
    "forget",
    "resolve",
    "secrets_file",
    "signing_ref",
    "store",
]

DEFAULT_SECRETS_FILE = PROJECT_ROOT / "data" / "secrets.toml"
_TABLE = "subscriptions"


class SecretError(ValueError):
    """A secret reference or the secrets file is not usable (the message names no value)."""


class SecretMissing(SecretError):
    """The secret a reference names is not set."""


def secrets_file() -> Path:
    """The secrets file: ``LOOKOUT_SECRETS`` or ``data/secrets.toml``."""
    return Path(os.environ.get("LOOKOUT_SECRETS") or DEFAULT_SECRETS_FILE)


def _split(ref: str) -> tuple[str, str]:
    scheme, sep, name = ref.partition(":")
    if not sep or scheme not in ("env", "secrets") or not name.strip():
        raise SecretError(f"a secret reference is env:NAME or secrets:NAME, not {ref[:40]!r}")
    return scheme, name


def signing_ref(ref: str) -> str:
    """Where the signing key of the webhook whose URL is at ``ref`` lives.

    >>> signing_ref("secrets:partner")
    'secrets:partner_signing'
    >>> signing_ref("env:PARTNER_URL")
    'env:PARTNER_URL_SIGNING'
    """
    scheme, name = _split(ref)
    return f"env:{name}_SIGNING" if scheme == "env" else f"secrets:{name}_signing"


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SecretError(f"cannot read the secrets file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message gives a position, never the text around it.
        raise SecretError(f"the secrets file {path} is not valid TOML: {exc}") from None
    tables: dict[str, dict[str, str]] = {}
    for table, entries in data.items():
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise SecretError(
                f"the secrets file {path} holds only tables of strings ([{_TABLE}]); "
                f"{table!r} is not one"
            )
        tables[table] = dict(entries)
    return tables


def resolve(ref: str) -> str:
    """The secret ``ref`` names; :class:`SecretMissing` (naming ``ref``) when unset.

    >>> import os
    >>> os.environ["LOOKOUT_DOCTEST_HOOK"] = "https://hooks.example/abc"
    >>> resolve("env:LOOKOUT_DOCTEST_HOOK")
    'https://hooks.example/abc'
    >>> del os.environ["LOOKOUT_DOCTEST_HOOK"]
    >>> resolve("env:LOOKOUT_DOCTEST_UNSET")
    Traceback (most recent call last):
    ...
    analytics.alerts.secrets.SecretMissing: secret env:LOOKOUT_DOCTEST_UNSET is not set (no environment variable LOOKOUT_DOCTEST_UNSET)
    """  # noqa: E501
    scheme, name = _split(ref)
    if scheme == "env":
        value = os.environ.get(name)
        if not value:
            raise SecretMissing(f"secret {ref} is not set (no environment variable {name})")
        return value
    path = secrets_file()
    value = _read(path).get(_TABLE, {}).get(name)
    if not value:
        raise SecretMissing(f"secret {ref} is not set (no entry {name!r} in [{_TABLE}] of {path})")
    return value


def _quote(text: str) -> str:
    r"""A TOML basic string holding ``text`` exactly.

    >>> print(_quote('say "hi"\n'))
    "say \"hi\"\u000a"
    """
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _render(tables: dict[str, dict[str, str]]) -> str:
    lines = ["# Lookout's secrets (webhook URLs, signing keys, passwords). Keep it mode 0600."]
    for table in sorted(tables):
        lines += ["", f"[{_quote(table)}]"]
        lines += [f"{_quote(k)} = {_quote(v)}" for k, v in sorted(tables[table].items())]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on a sidecar file while the secrets file is rewritten,
    so two writers at once lose neither's entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, tables: dict[str, dict[str, str]]) -> None:
    text = _render(tables)
    if tomllib.loads(text) != tables:  # pragma: no cover - _quote is exact
        raise SecretError("the secrets file could not be written faithfully")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets-", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_name(name: str) -> None:
    if not name or len(name) > 190 or any(ord(c) < 0x20 for c in name):
        raise SecretError(f"a secret's name is 1 to 190 printable characters, not {name[:40]!r}")


def store(name: str, value: str) -> str:
    """Write ``value`` as entry ``name`` of ``[subscriptions]`` in the secrets file
    (created with mode 0600; replaced atomically) and return its reference.

    >>> import os, tempfile
    >>> os.environ["LOOKOUT_SECRETS"] = os.path.join(tempfile.mkdtemp(), "s.toml")
    >>> store("oncall", "https://hooks.example/T0/B0/x")
    'secrets:oncall'
    >>> resolve("secrets:oncall")
    'https://hooks.example/T0/B0/x'
    >>> oct(os.stat(os.environ.pop("LOOKOUT_SECRETS")).st_mode & 0o777)
    '0o600'
    """
    _check_name(name)
    if not value:
        raise SecretError(f"the secret {name!r} is empty")
    path = secrets_file()
    with _locked(path):
        tables = _read(path)
        tables.setdefault(_TABLE, {})[name] = value
        _write(path, tables)
    return f"secrets:{name}"


def forget(name: str) -> bool:
    """Remove entry ``name`` from the secrets file; whether it was there."""
    path = secrets_file()
    with _locked(path):
        tables = _read(path)
        if name not in tables.get(_TABLE, {}):
            return False
        del tables[_TABLE][name]
        _write(path, tables)
    return True
