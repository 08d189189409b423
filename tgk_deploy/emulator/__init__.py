"""A local, stateful emulator of the Cloudflare API endpoints tgk-deploy uses.

Each Cloudflare service is a module of ``services/`` (workers, email_routing,
d1, r2, kv, accounts) holding its state, its rules and its routes, as moto
does it; ``wire`` is what they share on the wire (envelope, errors,
pagination, route table), ``state`` holds one of each, ``routes`` dispatches,
``faults`` is the seeded fault plan and ``server`` runs it all on 127.0.0.1.
Tests, ``tgk-deploy rehearse`` and the benchmarks use it through ``start()``;
``tgk-deploy emulator serve`` runs it for other programs (wrangler included).
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
