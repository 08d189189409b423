"""D1 export by polling, D1 delete, R2 bucket delete."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.helpers import ACCOUNT, client, codes
from tgk_deploy.emulator import Emulator

D1 = f"/accounts/{ACCOUNT}/d1/database"
R2 = f"/accounts/{ACCOUNT}/r2/buckets"


@pytest.fixture
def http(emulator: Emulator):
    with client(emulator) as c:
        yield c


def test_export_polls_until_complete_and_serves_the_dump(http, emulator):
    database = emulator.state.seed_d1("tgk-email-db", sql="CREATE TABLE t (x);\n")
    path = f"{D1}/{database.uuid}/export"

    first = http.post(path, json={"output_format": "polling"})
    bookmark = first.json()["result"]["at_bookmark"]
    poll = {"output_format": "polling", "current_bookmark": bookmark}
    second = http.post(path, json=poll)
    third = http.post(path, json=poll)

    assert first.status_code == 202 and first.json()["result"]["status"] == "active"
    assert second.status_code == 202 and second.json()["result"]["at_bookmark"] == bookmark
    assert third.status_code == 200
    result = third.json()["result"]
    assert result["status"] == "complete"
    assert result["result"]["filename"].endswith(".sql")
    dump = httpx.get(result["result"]["signed_url"])
    assert dump.status_code == 200
    assert dump.text == "CREATE TABLE t (x);\n"


def test_the_number_of_polls_is_configurable(http, emulator):
    emulator.state.export_polls = 1
    database = emulator.state.seed_d1("db")
    path = f"{D1}/{database.uuid}/export"
    bookmark = http.post(path, json={"output_format": "polling"}).json()["result"]["at_bookmark"]
    done = http.post(path, json={"output_format": "polling", "current_bookmark": bookmark})
    assert done.json()["result"]["status"] == "complete"


def test_export_refuses_an_unknown_bookmark_and_a_bad_body(http, emulator):
    database = emulator.state.seed_d1("db")
    path = f"{D1}/{database.uuid}/export"
    unknown = http.post(path, json={"output_format": "polling", "current_bookmark": "nope"})
    bad = http.post(path, json={"output_format": "zip"})
    assert unknown.status_code == 400
    assert bad.status_code == 400 and "output_format" in bad.json()["errors"][0]["message"]


def test_d1_get_and_delete(http, emulator):
    database = emulator.state.seed_d1("tgk-email-db")
    assert http.get(f"{D1}/{database.uuid}").json()["result"]["name"] == "tgk-email-db"
    assert http.delete(f"{D1}/{database.uuid}").json()["result"] is None
    missing = http.get(f"{D1}/{database.uuid}")
    assert missing.status_code == 404 and codes(missing) == [7404]


def test_r2_refuses_to_delete_a_bucket_that_is_not_empty(http, emulator):
    emulator.state.seed_r2("tgk-email-attachments", objects={"a.eml": b"x"})
    refused = http.delete(f"{R2}/tgk-email-attachments")
    assert refused.status_code == 409 and codes(refused) == [10008]

    emulator.state.buckets[(ACCOUNT, "tgk-email-attachments")].objects.clear()
    assert http.delete(f"{R2}/tgk-email-attachments").status_code == 200
    gone = http.get(f"{R2}/tgk-email-attachments")
    assert gone.status_code == 404 and codes(gone) == [10006]
