"""The SDK defects of CLOUDFLARE-API.md ("Traps" 4), still present in the installed SDK.

Each test shows the naive SDK call failing against the emulator AND our
workaround (raw envelopes through the SDK's generic client) returning the
right data. If an SDK upgrade fixes a defect, its first assertion fails:
that is the moment to reconsider the workaround, not to delete the test.
"""

from __future__ import annotations

import itertools
import json

import pytest

from tgk_deploy.emulator import DEFAULT_ACCOUNT_ID

SCRIPT = "tgk-email-orchestrator"


@pytest.fixture
def sdk(cloudflare):
    """The SDK client inside our layer: same auth, base URL, httpx client, max_retries=0."""
    return cloudflare.api.client


def test_the_installed_sdk_is_the_one_these_defects_were_seen_in(sdk):
    import cloudflare

    major, minor = (int(part) for part in cloudflare.__version__.split(".")[:2])
    assert (major, minor) >= (5, 7), cloudflare.__version__


def test_versions_get_fails_to_build_its_model_and_our_raw_read_works(cloudflare, sdk):
    from pydantic.errors import PydanticSchemaGenerationError

    seeded = cloudflare.emulator.state.seed_script(SCRIPT, vars={"AI_ANALYSIS": "true"})

    with pytest.raises(PydanticSchemaGenerationError):
        sdk.workers.scripts.versions.get(
            seeded.id, account_id=DEFAULT_ACCOUNT_ID, script_name=SCRIPT
        )

    version = cloudflare.api.get_version(SCRIPT, seeded.id)
    assert (version.id, version.vars) == (seeded.id, {"AI_ANALYSIS": "true"})


def test_versions_create_fails_to_build_its_model_and_our_upload_works(cloudflare, sdk):
    """The naive create does reach Cloudflare: the version exists, the caller gets an exception.

    Retried (as the SDK would by default), that is one more version per attempt;
    our upload goes through the generic ``post`` and reads the raw envelope.
    """
    from pydantic.errors import PydanticSchemaGenerationError

    cloudflare.emulator.state.seed_script(SCRIPT)
    metadata = {"main_module": "worker.js", "annotations": {"workers/tag": "tgk-naive"}}

    with pytest.raises(PydanticSchemaGenerationError):
        sdk.workers.scripts.versions.create(
            SCRIPT,
            account_id=DEFAULT_ACCOUNT_ID,
            metadata=metadata,
            files=[("worker.js", b"export default {}", "application/javascript+module")],
        )

    made_anyway = cloudflare.api.find_version_by_tag(SCRIPT, "tgk-naive")
    assert made_anyway is not None and made_anyway.number == 2
    base = cloudflare.api.get_version(SCRIPT, made_anyway.id)
    ours = cloudflare.api.derive_version(SCRIPT, base.id, vars={"X": "1"}, tag="tgk-ours")
    assert (ours.number, ours.tag, ours.vars) == (3, "tgk-ours", {"X": "1"})


def test_deployments_list_iterates_nothing_and_our_read_finds_the_live_split(cloudflare, sdk):
    state = cloudflare.emulator.state
    stable = state.seed_script(SCRIPT)
    candidate = state.seed_version(SCRIPT)
    cloudflare.api.deploy(SCRIPT, {candidate.id: 10, stable.id: 90})

    naive = list(sdk.workers.scripts.deployments.list(SCRIPT, account_id=DEFAULT_ACCOUNT_ID))

    assert naive == []  # it reads result.items; the API sends result.deployments
    raw = sdk.workers.scripts.deployments.with_raw_response.list(
        SCRIPT, account_id=DEFAULT_ACCOUNT_ID
    )
    assert len(json.loads(raw.http_response.content)["result"]["deployments"]) == 2
    live = cloudflare.api.live_deployment(SCRIPT)
    assert {s.version_id: s.percentage for s in live.versions} == {
        candidate.id: 10.0,
        stable.id: 90.0,
    }


def test_versions_list_deployable_ignores_pagination_and_our_list_reads_every_version(
    cloudflare, sdk
):
    """With ``deployable=True`` every "page" is the same last 100 versions.

    The SDK's page iterator asks for page 2, 3, ... until a page comes back
    empty, which never happens: iterating it naively repeats the first 100
    versions forever. (Seen here as 300 items with 100 distinct ids.)
    """
    state = cloudflare.emulator.state
    state.seed_script(SCRIPT)
    for _ in range(129):
        state.seed_version(SCRIPT)

    pages = sdk.workers.scripts.versions.list(
        SCRIPT, account_id=DEFAULT_ACCOUNT_ID, deployable=True
    )
    first_300 = [item.id for item in itertools.islice(pages, 300)]

    assert len(first_300) == 300
    assert len(set(first_300)) == 100  # page 2 and 3 repeat page 1
    ours = cloudflare.api.list_versions(SCRIPT)
    assert len(ours) == len({v.id for v in ours}) == 130
