"""The Email Worker's own tests (wrangler/test/*.test.mjs) run in Miniflare under ``node --test``.

They live in JavaScript because the Worker does; this test makes them part of
the Python suite so that CI fails when the Worker does.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WRANGLER = Path(__file__).resolve().parents[2] / "wrangler"

pytestmark = pytest.mark.node


def test_worker_passes_its_miniflare_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the Worker's Miniflare tests need node >= 20")
    assert (WRANGLER / "node_modules" / "miniflare").is_dir(), (
        "Miniflare is not installed: run .ci/install-node-deps.sh (npm ci in wrangler/)"
    )
    tests = sorted(str(p.relative_to(WRANGLER)) for p in (WRANGLER / "test").glob("*.test.mjs"))
    assert tests, "no Worker tests found in wrangler/test/"

    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", *tests],
        cwd=WRANGLER,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, f"node --test failed:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    assert "# fail 0" in run.stdout, run.stdout[-3000:]
