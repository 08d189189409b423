"""Shared fixtures. Each real part's fixtures live in tests/fixtures/<part>.py and are imported here."""
