"""The server, the handle, authentication, unknown paths and the request log."""

from __future__ import annotations

import time

import httpx

from tests.emulator.helpers import SCRIPT, SCRIPT_NAME, client, codes
from tgk_deploy.emulator import Emulator, SimulatedClock, start


def test_the_handle_serves_on_loopback_under_client_v4():
    with start() as emulator:
        assert emulator.url.startswith("http://127.0.0.1:")
        assert emulator.url.endswith("/client/v4")
        with client(emulator) as http:
            assert http.get("/user/tokens/verify").json()["result"]["status"] == "active"
    with httpx.Client(verify=False) as plain:
        try:
            plain.get(emulator.url + "/user/tokens/verify", timeout=1)
        except httpx.TransportError:
            pass
        else:
            raise AssertionError("the emulator still answers after stop()")


def test_startup_is_fast():
    started = time.perf_counter()
    emulator = start()
    elapsed = time.perf_counter() - started
    emulator.stop()
    assert elapsed < 0.5


def test_a_missing_or_malformed_token_is_401_authentication_error(emulator: Emulator):
    with httpx.Client(base_url=emulator.url, verify=False) as http:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
            response = http.get("/user/tokens/verify", headers=headers)
            assert response.status_code == 401
            assert response.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]


def test_configured_tokens_are_the_only_ones_accepted(emulator: Emulator):
    emulator.state.set_tokens(["good"])
    with client(emulator, "good") as good, client(emulator, "bad") as bad:
        assert good.get("/user/tokens/verify").status_code == 200
        assert bad.get("/user/tokens/verify").status_code == 401


def test_unknown_paths_get_a_404_envelope(emulator: Emulator):
    with client(emulator) as http:
        response = http.get("/accounts/x/workers/nothing-here")
        assert response.status_code == 404
        assert response.json() == {
            "success": False,
            "errors": [{"code": 7003, "message": "No route for the URI"}],
            "messages": [],
            "result": None,
        }
        assert http.post("/user/tokens/verify").status_code == 405


def test_the_request_log_keeps_method_path_status_never_bodies(emulator: Emulator):
    emulator.state.seed_script(SCRIPT_NAME)
    with client(emulator) as http:
        http.put(f"{SCRIPT}/secrets", json={"name": "K", "text": "hunter2", "type": "secret_text"})
        http.get(f"{SCRIPT}/secrets")
    log = emulator.requests
    assert [(r.method, r.status) for r in log] == [("PUT", 200), ("GET", 200)]
    assert log[0].path.endswith("/secrets")
    assert "hunter2" not in repr(log)
    assert emulator.calls("GET", "/secrets") == 1


def test_created_on_comes_from_the_injected_clock():
    clock = SimulatedClock()
    with start(clock=clock) as emulator:
        first = emulator.state.seed_script(SCRIPT_NAME)
        clock.advance(3 * 86400)
        with client(emulator) as http:
            http.post(
                f"{SCRIPT}/deployments",
                json={
                    "strategy": "percentage",
                    "versions": [{"version_id": first.id, "percentage": 100}],
                },
            )
            deployments = http.get(f"{SCRIPT}/deployments").json()["result"]["deployments"]
    assert deployments[1]["created_on"] == "2026-01-05T09:00:00.000000Z"
    assert deployments[0]["created_on"] == "2026-01-08T09:00:00.000000Z"


def test_the_same_seed_gives_the_same_ids():
    ids = []
    for _ in range(2):
        with start(seed=7) as emulator:
            ids.append(emulator.state.seed_script(SCRIPT_NAME).id)
    assert ids[0] == ids[1]


def test_reset_forgets_everything(emulator: Emulator):
    emulator.state.seed_script(SCRIPT_NAME)
    emulator.faults.set_latency(50)
    emulator.reset()
    with client(emulator) as http:
        assert codes(http.get(f"{SCRIPT}/versions")) == [10007]
    assert emulator.faults.latency_ms == 0


def test_a_chunked_request_body_is_read_whole(emulator: Emulator):
    emulator.state.seed_script(SCRIPT_NAME)

    def body():
        yield b'{"name": "K", "text": "v",'
        yield b' "type": "secret_text"}'

    with client(emulator) as http:
        response = http.put(f"{SCRIPT}/secrets", content=body())
    assert response.status_code == 200
