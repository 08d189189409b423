"""Shared fixtures: each real part has tests/fixtures/<part>.py, imported here."""

from tests.fixtures.cloudflare import cloudflare  # noqa: F401
from tests.fixtures.emulator import emulator, emulator_env, emulator_server  # noqa: F401
from tests.fixtures.engine import world  # noqa: F401
from tests.fixtures.prometheus import prometheus  # noqa: F401
from tests.fixtures.receivers import receivers  # noqa: F401
from tests.fixtures.spec import fresh, spec  # noqa: F401
