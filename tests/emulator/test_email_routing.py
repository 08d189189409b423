"""Email Routing rules and the catch-all, over real HTTP."""

from __future__ import annotations

import pytest

from tests.emulator.helpers import RULES, client, codes
from tgk_deploy.emulator import Emulator

WORKER_RULE = {
    "name": "tgk-email-orchestrator",
    "enabled": True,
    "priority": 1,
    "matchers": [{"type": "literal", "field": "to", "value": "alerts@tgk.example"}],
    "actions": [{"type": "worker", "value": ["tgk-email-orchestrator"]}],
}


@pytest.fixture
def http(emulator: Emulator):
    with client(emulator) as c:
        yield c


def test_create_get_and_list_rules(http):
    created = http.post(RULES, json=WORKER_RULE)

    assert created.status_code == 200
    rule = created.json()["result"]
    assert len(rule["id"]) == 32 and rule["tag"] == rule["id"]
    assert {k: rule[k] for k in WORKER_RULE} == WORKER_RULE
    assert http.get(f"{RULES}/{rule['id']}").json()["result"] == rule
    listed = http.get(RULES).json()
    assert listed["result"] == [rule]
    assert listed["result_info"] == {
        "page": 1,
        "per_page": 20,
        "count": 1,
        "total_count": 1,
        "total_pages": 1,
    }


def test_rules_are_paginated_and_filterable_by_enabled(http, emulator):
    for i in range(7):
        emulator.state.seed_email_rule(f"r{i}", enabled=i % 2 == 0, to=f"r{i}@tgk.example")
    page2 = http.get(RULES, params={"per_page": 5, "page": 2}).json()
    enabled = http.get(RULES, params={"enabled": "true", "per_page": 50}).json()

    assert [r["name"] for r in page2["result"]] == ["r5", "r6"]
    assert page2["result_info"]["total_count"] == 7
    assert {r["name"] for r in enabled["result"]} == {"r0", "r2", "r4", "r6"}
    assert http.get(RULES, params={"per_page": 51}).status_code == 400


def test_put_replaces_the_whole_rule(http):
    rule_id = http.post(RULES, json=WORKER_RULE).json()["result"]["id"]

    toggled = http.put(
        f"{RULES}/{rule_id}",
        json={
            "matchers": WORKER_RULE["matchers"],
            "actions": WORKER_RULE["actions"],
            "enabled": False,
        },
    )

    assert toggled.status_code == 200
    result = toggled.json()["result"]
    assert result["enabled"] is False
    assert result["name"] == ""  # not sent, so replaced by the default
    assert result["priority"] == 0


def test_put_without_actions_and_matchers_is_refused(http):
    rule_id = http.post(RULES, json=WORKER_RULE).json()["result"]["id"]
    response = http.put(f"{RULES}/{rule_id}", json={"enabled": False})
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert "actions" in message and "matchers" in message
    assert http.get(f"{RULES}/{rule_id}").json()["result"]["enabled"] is True


@pytest.mark.parametrize(
    "change",
    [
        {"actions": [{"type": "worker", "value": []}]},
        {"actions": [{"type": "forward", "value": ["not-an-address"]}]},
        {"actions": [{"type": "drop", "value": ["x@y.example"]}]},
        {"actions": [{"type": "teleport", "value": ["x"]}]},
        {"actions": []},
        {"matchers": [{"type": "all"}]},
        {"matchers": [{"type": "literal", "field": "to", "value": "nobody"}]},
        {"matchers": [{"type": "literal", "field": "from", "value": "x@y.example"}]},
    ],
)
def test_rule_actions_and_matchers_are_validated(http, change):
    response = http.post(RULES, json={**WORKER_RULE, **change})
    assert response.status_code == 400
    assert codes(response) == [2007]


def test_delete_rule_returns_it_and_then_it_is_gone(http):
    rule = http.post(RULES, json=WORKER_RULE).json()["result"]
    deleted = http.delete(f"{RULES}/{rule['id']}")
    assert deleted.json()["result"] == rule
    assert http.get(f"{RULES}/{rule['id']}").status_code == 404
    assert codes(http.delete(f"{RULES}/{rule['id']}")) == codes(http.get(f"{RULES}/{rule['id']}"))


def test_catch_all_defaults_to_a_disabled_drop_and_can_be_replaced(http):
    default = http.get(f"{RULES}/catch_all").json()["result"]
    assert default["enabled"] is False
    assert default["matchers"] == [{"type": "all"}]
    assert default["actions"] == [{"type": "drop"}]

    updated = http.put(
        f"{RULES}/catch_all",
        json={
            "enabled": True,
            "matchers": [{"type": "all"}],
            "actions": [{"type": "worker", "value": ["tgk-email-orchestrator"]}],
        },
    )

    assert updated.status_code == 200
    assert http.get(f"{RULES}/catch_all").json()["result"] == updated.json()["result"]
    assert updated.json()["result"]["id"] == default["id"]


def test_catch_all_refuses_literal_matchers(http):
    response = http.put(
        f"{RULES}/catch_all",
        json={"matchers": WORKER_RULE["matchers"], "actions": [{"type": "drop"}]},
    )
    assert response.status_code == 400


def test_seeded_rules_are_found_by_name(http, emulator):
    emulator.state.seed_email_rule(
        "tgk-email-orchestrator", enabled=False, worker="tgk-email-orchestrator"
    )
    emulator.state.seed_email_rule("legacy-email-router", enabled=True)
    rules = {r["name"]: r for r in http.get(RULES).json()["result"]}
    assert rules["tgk-email-orchestrator"]["enabled"] is False
    assert rules["legacy-email-router"]["enabled"] is True
    assert rules["legacy-email-router"]["actions"][0]["type"] == "forward"


def test_a_drop_action_with_values_gets_cloudflares_own_words(http):
    response = http.post(
        RULES, json={**WORKER_RULE, "actions": [{"type": "drop", "value": ["x@y.example"]}]}
    )
    assert response.json()["errors"] == [
        {
            "code": 2007,
            "message": "Invalid Input: actions: (0: (value: drop action cannot have values.).)",
        }
    ]
