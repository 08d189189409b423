"""Shared fixtures: each real part has tests/fixtures/<part>.py, imported here."""
