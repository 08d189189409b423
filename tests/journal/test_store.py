"""The journal keeps every run, action and verdict, and never a secret value."""

from __future__ import annotations

from tgk_deploy.journal.store import Journal
from tgk_deploy.secret_values import SecretValue, redact


def test_a_run_is_recorded_with_its_actions_and_verdicts(tmp_path):
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.start_run("r1", "advance", phase=2, step="canary-25")
        journal.action(
            "r1", "set_traffic", "send 25 % to v2", "applied", "production", {"deployment": "d9"}
        )
        journal.verdict("r1", "ai-p95-slow", "trigger", "pass", {"value": 4.2, "threshold": 10})
        journal.finish_run("r1", "succeeded")
        (run,) = journal.runs(phase=2)
    assert (run.command, run.status, run.step) == ("advance", "succeeded", "canary-25")
    assert run.actions[0]["result"] == {"deployment": "d9"}
    assert run.verdicts[0]["detail"]["value"] == 4.2


def test_history_filters_by_phase_newest_first(tmp_path):
    with Journal(tmp_path / "j.sqlite") as journal:
        for index, phase in enumerate([1, 2, 1]):
            journal.start_run(f"r{index}", "advance", phase=phase)
        assert [r.id for r in journal.runs(phase=1)] == ["r2", "r0"]


def test_secret_values_never_reach_the_journal_even_if_passed_by_mistake(tmp_path):
    secret = SecretValue("OPENAI_API_KEY", "sk-live-0123456789abcdef")
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.start_run("r1", "advance", phase=2)
        journal.action(
            "r1", "put_secret", f"oops {secret.reveal()}", "failed", error=f"boom {secret.reveal()}"
        )
        dump = "\n".join(journal.dump_text())
    assert "sk-live-0123456789abcdef" not in dump
    assert "[redacted]" in dump
    assert "sk-live" not in repr(secret) and "sk-live" not in str(secret)
    assert redact("key=sk-live-0123456789abcdef") == "key=[redacted]"


def test_the_journal_survives_reopening(tmp_path):
    path = tmp_path / "nested" / "j.sqlite"
    with Journal(path) as journal:
        journal.start_run("r1", "rollback")
    with Journal(path) as journal:
        assert journal.runs()[0].id == "r1"
