"""The Worker and the phase files agree on names: a typo on either side fails here, not in production."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.fixtures.spec import REPO
from tgk_deploy.bundle import read_bundle
from tgk_deploy.spec.models import Spec

SOURCES = "\n".join(p.read_text() for p in sorted((REPO / "wrangler" / "src").glob("*.js")))
METRICS_JS = (REPO / "wrangler" / "src" / "metrics.js").read_text()


def var_names(data: Any) -> Iterator[str]:
    """Every var a phase or feature sets: keys of any ``vars``, ``set_vars`` or ``off_vars``."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("vars", "set_vars", "off_vars") and isinstance(value, dict):
                yield from value
            else:
                yield from var_names(value)
    elif isinstance(data, list):
        for item in data:
            yield from var_names(item)


def test_every_var_the_rollout_sets_is_declared_in_both_environments_and_read_by_the_worker(
    spec: Spec,
):
    names = set(var_names(spec.model_dump(by_alias=True)))
    assert {"AI_ANALYSIS", "DYNAMIC_ROUTING", "EMAIL_REPLIES"} <= names
    for environment in ("production", "staging"):
        declared = {b.name for b in read_bundle(REPO / "wrangler", environment).bindings}
        assert names <= declared, f"{environment}: not in wrangler.toml: {names - declared}"
    unread = {name for name in names if f'"{name}"' not in SOURCES}
    assert not unread, f"the Worker never reads {unread}"


def test_every_metric_a_trigger_or_criterion_queries_is_one_the_worker_emits():
    queried = set()
    for phase_file in (REPO / "phases").glob("*.yaml"):
        for name in re.findall(r"\btgk_email_[a-z_]+", phase_file.read_text()):
            queried.add(re.sub(r"_(bucket|count|sum)$", "", name))
    assert queried, "the phase files query no tgk_email_* metric?"
    emitted = set(re.findall(r"^\s+(tgk_email_[a-z_]+): \[", METRICS_JS, re.MULTILINE))
    assert queried <= emitted, f"queried but never emitted: {queried - emitted}"
