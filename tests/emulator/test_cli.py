"""``tgk-deploy emulator serve``: prints where it listens, serves, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx


def test_serve_prints_its_url_serves_the_demo_and_stops_on_ctrl_c():
    command = Path(sys.executable).with_name("tgk-deploy")
    process = subprocess.Popen(
        [str(command), "emulator", "serve", "--port", "0", "--seed-demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines if "=" in line)
        url = exports["CLOUDFLARE_API_BASE_URL"].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/client/v4")
        account = exports["CLOUDFLARE_ACCOUNT_ID"].strip()
        response = httpx.get(
            f"{url}/accounts/{account}/workers/scripts/tgk-email-orchestrator/deployments",
            headers={"Authorization": "Bearer any"},
        )
        assert response.json()["result"]["deployments"][0]["versions"][0]["percentage"] == 100
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)  # a loaded CI machine may take a while to wind down
    assert code == 0
