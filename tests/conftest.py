"""Shared fixtures: each real part has tests/fixtures/<part>.py, imported here."""

import os

import pytest

from tests.fixtures.cloudflare import cloudflare  # noqa: F401
from tests.fixtures.emulator import emulator, emulator_env, emulator_server  # noqa: F401
from tests.fixtures.engine import world  # noqa: F401
from tests.fixtures.prometheus import prometheus  # noqa: F401
from tests.fixtures.receivers import receivers  # noqa: F401
from tests.fixtures.spec import fresh, spec  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The help and spec caches of every command a test runs go to a folder of the session's."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
