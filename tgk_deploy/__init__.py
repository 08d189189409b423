"""tgk-deploy: phased, metric-gated rollouts of a Cloudflare Email Worker."""

import os

__version__ = "0.1.0"


def cache_dir() -> str:
    """Where derived files live (the rendered help, the last validated spec): safe to delete.

    A string, not a Path: ``--help`` answered from the cache must not import pathlib.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tgk-deploy")
