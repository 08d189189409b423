"""A local, stateful emulator of the Cloudflare API endpoints tgk-deploy uses.

``state`` holds the account and the API's rules, ``routes`` is the HTTP
adapter, ``faults`` the seeded fault plan and ``server`` runs it all on
127.0.0.1. Tests, ``tgk-deploy rehearse`` and the benchmarks use it through
``start()``; ``tgk-deploy emulator serve`` runs it for other programs.
"""

from tgk_deploy.emulator.faults import Faults
from tgk_deploy.emulator.server import Emulator, start
from tgk_deploy.emulator.state import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_ZONE_ID,
    ApiError,
    EmulatorState,
    SimulatedClock,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_ZONE_ID",
    "ApiError",
    "Emulator",
    "EmulatorState",
    "Faults",
    "SimulatedClock",
    "start",
]
