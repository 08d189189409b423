"""Secret values never show, in any form: a hostile value through the CLI with the SDK's debug log."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import urllib.parse

import httpx

from tests.fixtures.spec import write_project
from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_ZONE_ID
from tgk_deploy.secret_values import SecretValue, redact

HOSTILE = {
    "HOSTILE_BACKSLASH": 'FAKE-sk-back\\slash-"quote\'s"-TESTONLY',
    "HOSTILE_UNICODE": "FAKE-Ünïcødé-ключ-TESTONLY",
    "HOSTILE_URL": "FAKE-sp ace+plus/slash=eq%25&amp-new\nline\ttab-TESTONLY",
}

PHASE = textwrap.dedent(
    """\
    phase: 1
    name: foundation
    summary: secrets put at 100 % (a script-level PUT) and mid-split (an inheriting version)
    risk: low
    steps:
      - id: staging
        environment: staging
        actions:
          - put_secret: {name: BACKSLASH, from_env: HOSTILE_BACKSLASH}
          - deploy: {percentage: 100}
        bake: 0s
      - id: canary
        actions:
          - put_secret: {name: UNICODE, from_env: HOSTILE_UNICODE}
          - deploy: {percentage: 10}
        bake: 0s
      - id: canary-more
        actions:
          - put_secret: {name: URLISH, from_env: HOSTILE_URL}
    rollback_triggers:
      - name: routing-errors
        query: vector(2)
        op: ">"
        threshold: 5
    on_trigger: immediate-rollback
    """
)


def every_form(value: str) -> set[str]:
    """How a value can show in a log line; written here, apart from the redactor's own list."""
    raw = value.encode()
    forms = {
        value,
        repr(value)[1:-1],
        repr(raw)[2:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        repr(json.dumps(value))[1:-1],
        repr(json.dumps(value).encode())[2:-1],
    }
    for pad in (b"", b"x", b"xy"):  # the three alignments inside a longer base64 body
        encoded = base64.b64encode(pad + raw).decode()
        forms.add(encoded[4 : len(encoded) - 4])
    return forms


def test_every_form_of_a_remembered_value_is_masked():
    value = HOSTILE["HOSTILE_BACKSLASH"] + "-unit"
    SecretValue("UNIT", value)
    for form in every_form(value):
        assert form not in redact(f"before {form} after"), form


def secret_names(emulator, script: str) -> list[str]:
    """The secrets Cloudflare says the script has: the values did go out, in version uploads."""
    path = f"{emulator.url}/accounts/{DEFAULT_ACCOUNT_ID}/workers/scripts/{script}/secrets"
    answer = httpx.get(path, headers={"Authorization": "Bearer hostile-test"}, timeout=10)
    return sorted(secret["name"] for secret in answer.json()["result"])


def test_hostile_secret_values_show_in_no_form_under_debug_logging(emulator, prometheus, tmp_path):
    project = write_project(tmp_path, PHASE)
    seeded = emulator.state.seed_demo()
    env = {
        **os.environ,
        **HOSTILE,
        "CLOUDFLARE_API_BASE_URL": emulator.url,
        "CLOUDFLARE_API_TOKEN": "hostile-test",
        "CLOUDFLARE_ACCOUNT_ID": DEFAULT_ACCOUNT_ID,
        "CLOUDFLARE_ZONE_ID": DEFAULT_ZONE_ID,
        "TGK_D1_DATABASE_ID": seeded["d1_database_id"],
        "PROMETHEUS_URL": prometheus.url,
        "PROMETHEUS_TOKEN": "unused",
        "TGK_DEPLOY_PROJECT": str(project),
        "NO_COLOR": "1",
        "CLOUDFLARE_LOG": "debug",
    }
    env.pop("TGK_DEPLOY_JOURNAL", None)
    outputs = []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-m", "tgk_deploy.cli.app", "advance", "--phase", "1", "--yes"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outputs += [done.stdout, done.stderr]
    assert "Request options" in "".join(outputs)  # the SDK did log request bodies
    assert "BACKSLASH" in secret_names(emulator, "tgk-email-orchestrator-staging")
    assert {"UNICODE", "URLISH"} <= set(secret_names(emulator, "tgk-email-orchestrator"))
    journal = "\n".join(sqlite3.connect(tmp_path / "journal.sqlite").iterdump())
    for value in HOSTILE.values():
        for form in every_form(value):
            for text in (*outputs, journal):
                assert form not in text, f"a form of a secret value shows: {form!r}"
