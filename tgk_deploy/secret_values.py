"""Where secret values come from, and the redactor that keeps them out of every output.

A value is read at the last moment (from an environment variable or a file,
never from a spec file), registered with the redactor, and handed to the
Cloudflare layer as a ``SecretValue`` whose ``repr`` and ``str`` show only
the name. Every text that leaves the process through the journal, logs or
error messages can be passed through ``redact`` as a second line of defence.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from tgk_deploy.errors import ConfigError

_known: set[str] = set()
_lock = threading.Lock()
MASK = "[redacted]"


class SecretValue:
    """A secret's value that cannot be printed by accident."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self._value = value
        remember(value)

    def reveal(self) -> str:
        """The value itself: only for the request body that sends it to Cloudflare."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({self.name!r}, {MASK})"

    __str__ = __repr__


def remember(value: str) -> None:
    if len(value) >= 4:  # shorter values would mask ordinary words
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    with _lock:
        values = sorted(_known, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def read_secret(name: str, source: str, base: Path | None = None) -> SecretValue:
    """``source`` is ``env:VAR`` or ``file:PATH``, as a PutSecret action carries it."""
    kind, _, where = source.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if value is None or value == "":
            raise ConfigError(
                f"secret {name} is to come from the environment variable {where}, which is not set",
                hint=f"export {where}=… and run the command again",
            )
    elif kind == "file":
        path = Path(where) if base is None else base / where
        try:
            value = path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as error:
            raise ConfigError(f"secret {name}: cannot read {path}: {error.strerror}") from None
    else:
        raise ConfigError(f"secret {name}: unknown source kind {kind!r}")
    return SecretValue(name, value)


class RedactingFilter(logging.Filter):
    """Install on any handler that writes tgk-deploy's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True
