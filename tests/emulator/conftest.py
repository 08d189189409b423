"""Every response the session emulator gives in these tests is held to the OpenAPI subset."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.contract import check_response, template_for
from tgk_deploy.emulator import Emulator
from tgk_deploy.emulator.routes import Request, Response


@pytest.fixture(autouse=True)
def responses_fit_the_contract(
    emulator_server: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[tuple[str, str, int]]]:
    seen: list[tuple[Request, Response]] = []
    handle = emulator_server.api.handle

    def recording(request: Request) -> Response:
        response = handle(request)
        seen.append((request, response))
        return response

    monkeypatch.setattr(emulator_server.api, "handle", recording)
    checked: list[tuple[str, str, int]] = []
    yield checked
    for request, response in seen:
        template = template_for(request.path)
        content_type = response.headers.get("Content-Type", "")
        if template is None or not content_type.startswith("application/json"):
            continue
        body = json.loads(response.body)
        if check_response(request.method, template, response.status, body):
            checked.append((request.method, template, response.status))
