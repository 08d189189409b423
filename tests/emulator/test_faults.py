"""Injected faults: latency, 429 + Retry-After, 5xx rates, dropped connections, Nth mutation."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.emulator.helpers import SCRIPT, SCRIPT_NAME, client, create_version
from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID, Emulator, start


@pytest.fixture
def http(emulator: Emulator):
    emulator.state.seed_script(SCRIPT_NAME)
    with client(emulator) as c:
        yield c


def _versions(emulator: Emulator) -> int:
    return len(emulator.state.get_script("023e105f4ecef8ad9ca31a8372d0c353", SCRIPT_NAME).versions)


def test_latency_is_added_to_every_call_and_overlaps_for_concurrent_calls(http, emulator):
    emulator.faults.set_latency(100)
    started = time.perf_counter()
    http.get(f"{SCRIPT}/deployments")
    one = time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: client(emulator).get(f"{SCRIPT}/versions"), range(4)))
    four = time.perf_counter() - started

    # Bounds that hold on a loaded 2-core CI machine: one call waits at least the latency,
    # and four concurrent calls finish well before four waits in a row would (0.4 s).
    assert one >= 0.1
    assert 0.1 <= four < 0.35


def test_fail_next_answers_429_with_retry_after_once(http, emulator):
    emulator.faults.fail_next("POST", ".../deployments", status=429, retry_after=3)
    body = {"strategy": "percentage", "versions": [{"version_id": "x", "percentage": 100}]}

    limited = http.post(f"{SCRIPT}/deployments", json=body)
    other_path = http.get(f"{SCRIPT}/deployments")
    after = http.post(f"{SCRIPT}/deployments", json=body)

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["success"] is False
    assert other_path.status_code == 200
    assert after.status_code == 404  # the real answer: version x does not exist
    assert emulator.requests[0].fault.startswith("HTTP 429")


def test_fail_next_after_applies_the_call_then_answers_the_error(http, emulator):
    emulator.faults.fail_next("POST", "*/versions", status=502, after=True)
    response = create_version(http)
    assert response.status_code == 502
    assert _versions(emulator) == 2


def test_a_dropped_connection_gets_no_answer_and_changes_nothing(http, emulator):
    emulator.faults.drop_next("POST", ".../versions")
    with pytest.raises(httpx.RemoteProtocolError):
        create_version(http)
    assert _versions(emulator) == 1
    assert create_version(http).status_code == 200
    assert emulator.requests[0].status is None


def test_drop_after_applies_the_mutation_then_drops(http, emulator):
    """The case that makes a blind retry of "create version" make two versions."""
    emulator.faults.drop_next("POST", ".../versions", after=True)
    with pytest.raises(httpx.RemoteProtocolError):
        create_version(http, tag="upload-1")
    assert _versions(emulator) == 2
    tags = [
        v["annotations"].get("workers/tag")
        for v in http.get(f"{SCRIPT}/versions").json()["result"]["items"]
    ]
    assert tags[0] == "upload-1"


def test_the_nth_mutation_fails_and_reads_do_not_count(http, emulator):
    emulator.faults.fail_nth_mutation(2, status=503)
    first = create_version(http)
    read = http.get(f"{SCRIPT}/versions")
    second = create_version(http)
    third = create_version(http)
    assert [r.status_code for r in (first, read, second, third)] == [200, 200, 503, 200]


def test_error_rate_is_seeded_and_deterministic():
    def statuses(seed: int) -> list[int]:
        with start(seed=seed) as emulator:
            emulator.faults.set_error_rate(0.3, status=500)
            with client(emulator) as http:
                return [http.get("/user/tokens/verify").status_code for _ in range(30)]

    first, again, other = statuses(11), statuses(11), statuses(12)
    assert first == again
    assert first != other
    assert 0 < first.count(500) < 30


def test_drop_rate_drops_some_calls():
    with start(seed=3) as emulator:
        emulator.faults.set_drop_rate(0.5)
        outcomes = []
        for _ in range(20):
            with client(emulator) as http:
                try:
                    outcomes.append(http.get("/user/tokens/verify").status_code)
                except httpx.RemoteProtocolError:
                    outcomes.append(None)
    assert None in outcomes and 200 in outcomes


def test_control_plane_calls_are_never_faulted_nor_logged(emulator):
    emulator.faults.set_error_rate(1.0)
    with httpx.Client(base_url=emulator.origin, verify=False) as http:
        assert http.get("/__emulator/faults").status_code == 200
    assert emulator.requests == []


def test_a_held_call_waits_until_the_other_has_been_handled(emulator):
    """Forced interleaving: the first POST is held until a second one lands, then goes on."""
    import threading

    from tests.fixtures.emulator import EMULATOR_TOKEN

    emulator.state.seed_script("held")
    path = f"/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/held/deployments"
    emulator.faults.hold_next("POST", f"...{path}", until=("GET", ".../versions"))
    client = httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {EMULATOR_TOKEN}"}
    )
    live = client.get(path).json()["result"]["deployments"][0]
    held = threading.Thread(
        target=lambda: client.post(
            path, json={"strategy": "percentage", "versions": live["versions"]}
        )
    )
    held.start()
    held.join(0.3)
    assert held.is_alive()  # still held: nothing released it yet
    client.get(path.replace("deployments", "versions"))
    held.join(5)
    assert not held.is_alive()
    order = [(r.method, r.path.split("/")[-1]) for r in emulator.requests]
    assert order == [("GET", "deployments"), ("GET", "versions"), ("POST", "deployments")]
