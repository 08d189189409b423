"""One module per emulated Cloudflare service, each with its state, its rules and its routes.

As moto does it: ``workers`` (scripts, versions, deployments, secrets,
settings), ``email_routing``, ``d1``, ``r2``, ``kv`` (namespaces) and
``accounts`` (accounts, zones, tokens). They share the wire conventions of
``emulator.wire`` and the clock, ids and lock of ``emulator.context``;
``emulator.state.EmulatorState`` holds one of each.
"""
