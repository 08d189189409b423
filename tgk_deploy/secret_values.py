"""Where secret values come from, and the redactor that keeps them out of every output.

A value is read at the last moment (from an environment variable or a file,
never from a spec file), registered with the redactor, and handed to the
Cloudflare layer as a ``SecretValue`` whose ``repr`` and ``str`` show only
the name. Every text that leaves the process through the journal, logs or
error messages can be passed through ``redact`` as a second line of defence.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import threading
from pathlib import Path
from urllib.parse import quote, quote_plus

from tgk_deploy.errors import ConfigError

_known: set[str] = set()
_windows: set[bytes] = set()
_verdicts: dict[tuple[str, int], bool] = {}  # (run, windows known) -> whether it hides a value
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


def encodings(value: str) -> set[str]:
    """Every form ``value`` can take in a log line: raw, repr-, JSON- and URL-escaped, base64.

    Escapes compose (a JSON body shown by a ``repr``, a repr inside a repr), so
    each escaped form is escaped again. Base64 is not listed: ``redact`` decodes
    base64-looking runs instead, since any slice of a longer body may show.
    """
    raw = value.encode("utf-8")
    first = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        repr(raw)[2:-1],
        value.encode("unicode_escape").decode("ascii"),
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
    }
    forms = set(first)
    for form in first:
        forms |= {repr(form)[1:-1], repr(form.encode("utf-8"))[2:-1], json.dumps(form)[1:-1]}
    return {form for form in forms if len(form) >= 4}


def remember(value: str) -> None:
    if len(value) >= 4:  # shorter values would mask ordinary words
        forms = encodings(value)
        raw = value.encode("utf-8")
        width = min(len(raw), _WINDOW)
        windows = {raw[i : i + width] for i in range(len(raw) - width + 1)}
        with _lock:
            _known.update(forms)
            _windows.update(windows)


_WINDOW = 6  # bytes of a value that, found in a decoded base64 run, mask the run
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def _hides_a_value(run: str, windows: set[bytes]) -> bool:
    """Whether any alignment of this base64-looking run decodes to a slice of a value.

    Each slice of the decoded bytes is looked up in the window set (one hash
    lookup per slice and width), not each window searched for in the bytes: the
    journal redacts every verdict, and queries are full of base64-looking words.
    """
    widths = {len(window) for window in windows}
    for start in range(4):
        body = run[start:].rstrip("=")
        body = body[: len(body) - len(body) % 4]
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(body)
            except (binascii.Error, ValueError):
                continue
            for width in widths:
                if any(decoded[i : i + width] in windows for i in range(len(decoded) - width + 1)):
                    return True
    return False


def _run_hides_a_value(run: str, windows: set[bytes]) -> bool:
    """``_hides_a_value``, remembered per run and set of windows (which only ever grows)."""
    key = (run, len(windows))
    verdict = _verdicts.get(key)
    if verdict is None:
        verdict = _verdicts[key] = _hides_a_value(run, windows)
        if len(_verdicts) > 50_000:  # bounded: a long-lived receiver sees many texts
            _verdicts.clear()
    return verdict


def redact(text: str) -> str:
    with _lock:
        values = sorted(_known, key=len, reverse=True)
        windows = set(_windows)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    if windows:
        text = _BASE64_RUN.sub(
            lambda run: MASK if _run_hides_a_value(run.group(0), windows) else run.group(0), text
        )
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
