"""The /__emulator/ control plane: what rehearse and out-of-process tests script with."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.helpers import RULES, SCRIPT, SCRIPT_NAME, client
from tgk_deploy.emulator import Emulator, SimulatedClock, start


@pytest.fixture
def control(emulator: Emulator):
    with httpx.Client(base_url=emulator.origin + "/__emulator", verify=False) as c:
        yield c


def test_seed_a_script_and_email_rules_over_http(control, emulator):
    assert (
        control.post("/seed/script", json={"name": SCRIPT_NAME, "vars": {"A": "1"}}).status_code
        == 200
    )
    control.post("/seed/email-rule", json={"name": "legacy-email-router", "enabled": False})
    with client(emulator) as http:
        live = http.get(f"{SCRIPT}/deployments").json()["result"]["deployments"][0]
        rules = http.get(RULES).json()["result"]
    assert live["versions"][0]["percentage"] == 100
    assert [(r["name"], r["enabled"]) for r in rules] == [("legacy-email-router", False)]


def test_seed_demo_builds_the_world_of_the_project_file(control, emulator):
    ids = control.post("/seed/demo").json()["result"]
    with client(emulator) as http:
        rules = {r["name"]: r["enabled"] for r in http.get(RULES).json()["result"]}
        assert http.get(f"{SCRIPT}/secrets").json()["result"] == [
            {"name": "TELEGRAM_BOT_TOKEN", "type": "secret_text"}
        ]
    assert rules == {"tgk-email-orchestrator": False, "legacy-email-router": True}
    assert ids["d1_database_id"] and ids["r2_bucket"] == "tgk-email-attachments"


def test_faults_and_the_request_log_over_http(control, emulator):
    emulator.state.seed_script(SCRIPT_NAME)
    control.post(
        "/faults/fail-next",
        json={"method": "GET", "path": ".../deployments", "status": 429, "retry_after": 2},
    )
    with client(emulator) as http:
        assert http.get(f"{SCRIPT}/deployments").status_code == 429
        assert http.get(f"{SCRIPT}/deployments").status_code == 200
    log = control.get("/requests").json()["result"]
    assert [(e["method"], e["status"]) for e in log] == [("GET", 429), ("GET", 200)]
    assert control.post("/faults", json={"latency_ms": 5}).json()["result"]["latency_ms"] == 5
    control.post("/reset")
    assert control.get("/requests").json()["result"] == []
    assert control.get("/faults").json()["result"]["latency_ms"] == 0


def test_the_clock_moves_only_when_told_over_http():
    clock = SimulatedClock()
    with (
        start(clock=clock) as emulator,
        httpx.Client(base_url=emulator.origin, verify=False) as http,
    ):
        before = clock()
        now = http.post("/__emulator/clock", json={"advance_seconds": 3600}).json()["result"]["now"]
        assert (clock() - before).total_seconds() == 3600
        assert now == clock().isoformat()


def test_unknown_control_routes_are_404(control):
    assert control.get("/nothing").status_code == 404
