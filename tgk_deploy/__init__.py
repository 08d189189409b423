"""tgk-deploy: phased, metric-gated rollouts of a Cloudflare Email Worker."""

__version__ = "0.1.0"
