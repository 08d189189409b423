"""Secret edits once a rollback's standby switch-off is the script's latest version.

A phase's first split uploads, never deploys, the switch-off its immediate
rollback pins. From then on the script's latest version is not the deployed one,
and Cloudflare refuses a script-level secret PUT or DELETE with 10215 (the
emulator, over HTTP, refuses as it does). tgk-deploy edits secrets as wrangler's
``versions secret put`` does: a version derived from each live one, deployed in
the same split; the standby stays where it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.engine.test_advance import run_to
from tests.fixtures.spec import REPO
from tgk_deploy.engine.apply import Applier
from tgk_deploy.errors import CloudflareError
from tgk_deploy.planner.actions import DeleteSecret, PutSecret
from tgk_deploy.secret_values import read_secret
from tgk_deploy.spec.load import load_spec
from tgk_deploy.spec.models import Spec

SCRIPT = "tgk-email-orchestrator"


@pytest.fixture
def standby_latest(world):
    """Phase 2 at 100 %, its standby switch-off uploaded at canary-25 and still the latest."""
    run_to(world, 2, "full")
    production = world.production()
    latest = max(production.versions.values(), key=lambda v: v.number)
    assert latest.tag and latest.tag.startswith("tgk-rb-")
    assert production.live.share_of(latest.id) == 0
    return latest


def test_cloudflare_refuses_the_script_level_secret_put_there(world, standby_latest):
    secret = read_secret("REPLY_SIGNING_SECRET", "env:REPLY_SIGNING_SECRET")

    with pytest.raises(CloudflareError) as refused:
        world.api.put_secret(SCRIPT, secret)

    assert refused.value.codes == [10215]


def test_a_secret_put_after_the_standby_upload_goes_live_on_a_derived_version(
    world, standby_latest
):
    before = world.production()
    [(live_id, _)] = before.live.shares.items()
    put = PutSecret(
        environment="production",
        script=SCRIPT,
        name="REPLY_SIGNING_SECRET",
        source="env:REPLY_SIGNING_SECRET",
    )

    outcome = Applier(world.context(), world.observe()).apply(put)

    after = world.production()
    [(new_id, share)] = after.live.shares.items()
    new, old = after.versions[new_id], before.versions[live_id]
    assert outcome.status == "applied" and share == 100 and new_id != live_id
    assert new.secret_names == sorted({*old.secret_names, "REPLY_SIGNING_SECRET"})
    assert new.vars == old.vars
    assert "REPLY_SIGNING_SECRET" in after.secret_names
    assert after.version_with_tag(standby_latest.tag) is not None


def test_a_secret_delete_after_the_standby_upload_goes_live_on_a_derived_version(
    world, standby_latest
):
    delete = DeleteSecret(environment="production", script=SCRIPT, name="OPENAI_API_KEY")

    Applier(world.context(), world.observe()).apply(delete)

    after = world.production()
    [(new_id, share)] = after.live.shares.items()
    assert share == 100 and "OPENAI_API_KEY" not in after.versions[new_id].secret_names
    assert "OPENAI_API_KEY" not in after.secret_names


OLD_STAGING_APIS = """\
      - set_vars:
          SCHEDULE_API_URL: https://oncall.staging.tgk.example/api/v1
          INTERACTIVE_BUTTONS: true
"""
UPLOAD_AGAIN = """\
      - deploy:
          percentage: 100
          vars:
            DYNAMIC_ROUTING: true
            DYNAMIC_ROUTING_SCOPE: all
            SCHEDULE_API_URL: https://oncall.staging.tgk.example/api/v1
            INTERACTIVE_BUTTONS: true
"""


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    """The project as it was before phase 3 worked around 10215: staging-apis uploads again."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "phases", project / "phases")
    text = (REPO / "tgk-deploy.yaml").read_text()
    (project / "tgk-deploy.yaml").write_text(
        text.replace("bundle: wrangler", f"bundle: {REPO / 'wrangler'}")
    )
    phase_3 = project / "phases" / "3-dynamic-routing.yaml"
    assert OLD_STAGING_APIS in phase_3.read_text()
    phase_3.write_text(phase_3.read_text().replace(OLD_STAGING_APIS, UPLOAD_AGAIN))
    return load_spec(project / "tgk-deploy.yaml")


def test_phase_4_puts_its_secret_after_phase_3_left_a_standby_as_the_latest_version(world):
    run_to(world, 3, "staging-apis")
    staging = world.observe().environments["staging"]
    latest = max(staging.versions.values(), key=lambda v: v.number)
    assert (latest.tag or "").startswith("tgk-rb-") and staging.live.share_of(latest.id) == 0

    run_to(world, 4, "staging")

    staging = world.observe().environments["staging"]
    [(live_id, share)] = staging.live.shares.items()
    assert share == 100 and "REPLY_SIGNING_SECRET" in staging.versions[live_id].secret_names
    assert staging.versions[live_id].vars["EMAIL_REPLIES"] == "true"
