"""``--help`` and ``--version`` answered without importing typer, rich or pydantic.

Typer alone costs more to import than the whole answer should take (issue 16:
``--help`` within a tenth of ``wrangler --version``). So the text Typer
renders for ``tgk-deploy [COMMAND] --help`` is kept in the user's cache
directory with a key naming everything it depends on: the argument list, the
terminal width, colour settings, the Python and Typer in use, and the size and
mtime of every module of this package. The first call renders through Typer
and stores; later calls print the stored text if the key still matches. Only
the standard library is imported here, and only ``os``/``sys`` are touched
before the key is known.
"""

from __future__ import annotations

import os
import sys

from tgk_deploy import cache_dir

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz-")


def cacheable(argv: list[str]) -> bool:
    """``--help`` alone, or after one command name: nothing else changes the text."""
    if argv == ["--help"]:
        return True
    return len(argv) == 2 and argv[1] == "--help" and set(argv[0]) <= _NAME_CHARS


def _cache_file(argv: list[str]) -> str:
    name = "root" if len(argv) == 1 else argv[0]
    return os.path.join(cache_dir(), f"help-{name}.txt")


def _columns() -> str:
    """What click's formatter will see (``shutil.get_terminal_size``'s rules)."""
    columns = os.environ.get("COLUMNS", "")
    if columns:
        return columns
    try:
        return str(os.get_terminal_size(sys.__stdout__.fileno()).columns)
    except (AttributeError, ValueError, OSError):
        return "80"


def _sources() -> list[str]:
    """Size and mtime of every module of the package and of Typer's installed files."""
    found: list[str] = []
    roots = [PACKAGE]
    for entry in sys.path:
        typer_dir = os.path.join(entry or ".", "typer")
        if os.path.isdir(typer_dir):
            roots.append(typer_dir)
            break
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    stat = os.stat(os.path.join(folder, name))
                    found.append(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return sorted(found)


def _key(argv: list[str]) -> str:
    settings = [
        f"{name}={os.environ.get(name, '')}"
        for name in ("NO_COLOR", "FORCE_COLOR", "TERM", "_TYPER_STANDARD_TRACEBACK")
    ]
    head = [" ".join(argv), _columns(), sys.version, *settings]
    return "\n".join(head + _sources()) + "\n\n"


def answer(argv: list[str]) -> bool:
    """Print the answer to a cheap question and return True; False: ask Typer."""
    if argv == ["--version"]:
        from tgk_deploy import __version__

        sys.stdout.write(f"tgk-deploy {__version__}\n")
        return True
    if not cacheable(argv):
        return False
    try:
        with open(_cache_file(argv), encoding="utf-8") as cached:
            stored = cached.read()
    except (OSError, UnicodeDecodeError):
        return False
    key = _key(argv)
    if not stored.startswith(key):
        return False
    sys.stdout.write(stored[len(key) :])
    return True


def store(argv: list[str], text: str) -> None:
    """Keep Typer's rendering for next time; a cache that cannot be written is no error."""
    path = _cache_file(argv)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(_key(argv) + text)
        os.replace(temporary, path)
    except OSError:
        pass
