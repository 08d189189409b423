"""The HTTP layer one request at a time (respx): bodies, auth, warnings, errors, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from tgk_deploy.errors import ConfigError, PrometheusQueryError, PrometheusUnreachable
from tgk_deploy.spec.models import PrometheusSpec
from tgk_deploy.triggers.prometheus import PrometheusClient, RetryPolicy
from tgk_deploy.triggers.samples import QueryRequest

BASE = "http://prometheus.test:9090"
AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FAST = RetryPolicy(
    deadline=timedelta(seconds=2),
    first_wait=timedelta(milliseconds=1),
    max_wait=timedelta(milliseconds=5),
)


def vector(value: str = "0.5", warnings: list[str] | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [AT.timestamp(), value]}],
        },
    }
    if warnings:
        body["warnings"] = warnings
    return body


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


@pytest.fixture
def client():
    with PrometheusClient(BASE, retry=FAST) as client:
        yield client


@respx.mock
def test_an_instant_query_posts_the_query_and_an_explicit_time(client):
    route = respx.post(f"{BASE}/api/v1/query").respond(json=vector("0.25"))

    result = client.query("sum(up)", AT)

    sent = form(route.calls.last.request)
    assert sent == {"query": "sum(up)", "time": f"{AT.timestamp():.3f}", "timeout": "10s"}
    assert result.series[0].points[0].value == 0.25


@respx.mock
def test_a_range_query_posts_start_end_and_step(client):
    route = respx.post(f"{BASE}/api/v1/query_range").respond(
        json={
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [
                    {
                        "metric": {"version": "a"},
                        "values": [[AT.timestamp() - 60, "1"], [AT.timestamp(), "NaN"]],
                    }
                ],
            },
        }
    )

    result = client.query_range("x", AT - timedelta(minutes=1), AT, timedelta(minutes=1))

    sent = form(route.calls.last.request)
    assert sent["start"] == f"{AT.timestamp() - 60:.3f}" and sent["step"] == "60s"
    [series] = result.series
    assert series.labels == {"version": "a"}
    assert series.points[1].is_nan


@respx.mock
def test_warnings_come_back_verbatim(client):
    respx.post(f"{BASE}/api/v1/query").respond(
        json=vector(warnings=["remote read: partial response from store eu-1"])
    )

    assert client.query("x", AT).warnings == ["remote read: partial response from store eu-1"]


@respx.mock
def test_a_prometheus_error_keeps_its_type_and_message_and_is_not_retried(client):
    route = respx.post(f"{BASE}/api/v1/query").respond(
        422,
        json={
            "status": "error",
            "errorType": "execution",
            "error": "many-to-many matching not allowed",
        },
    )

    with pytest.raises(PrometheusQueryError) as raised:
        client.query("a / b", AT)

    assert route.call_count == 1
    assert raised.value.error_type == "execution"
    assert raised.value.message == (
        "Prometheus execution (HTTP 422): many-to-many matching not allowed"
    )


@respx.mock
def test_a_5xx_is_retried_until_it_answers(client):
    route = respx.post(f"{BASE}/api/v1/query").mock(
        side_effect=[
            httpx.Response(503, text="Service Unavailable"),
            httpx.Response(502, text="<html>bad gateway</html>"),
            httpx.Response(200, json=vector("1")),
        ]
    )

    result = client.query("up", AT)

    assert route.call_count == 3
    assert result.series[0].points[0].value == 1


@respx.mock
def test_a_429_and_dropped_connections_are_retried(client):
    route = respx.post(f"{BASE}/api/v1/query").mock(
        side_effect=[
            httpx.Response(
                429,
                headers={"Retry-After": "0"},
                json={"status": "error", "errorType": "unavailable", "error": "too many queries"},
            ),
            httpx.ConnectError("connection reset"),
            httpx.Response(200, json=vector("1")),
        ]
    )

    client.query("up", AT)

    assert route.call_count == 3


@respx.mock
def test_a_5xx_that_persists_ends_in_the_last_error_verbatim_after_the_deadline():
    policy = RetryPolicy(
        deadline=timedelta(milliseconds=100),
        first_wait=timedelta(milliseconds=5),
        max_wait=timedelta(milliseconds=10),
    )
    route = respx.post(f"{BASE}/api/v1/query").respond(
        503,
        json={
            "status": "error",
            "errorType": "timeout",
            "error": "query timed out in expression evaluation",
        },
    )

    with (
        PrometheusClient(BASE, retry=policy) as client,
        pytest.raises(PrometheusQueryError) as raised,
    ):
        client.query("up", AT)

    assert route.call_count > 1
    assert raised.value.error_type == "timeout"
    assert raised.value.status == 503


@respx.mock
def test_timeouts_past_the_deadline_are_unreachable():
    policy = RetryPolicy(
        deadline=timedelta(milliseconds=50),
        first_wait=timedelta(milliseconds=5),
        max_wait=timedelta(milliseconds=10),
    )
    respx.post(f"{BASE}/api/v1/query").mock(side_effect=httpx.ReadTimeout("timed out"))

    with (
        PrometheusClient(BASE, retry=policy) as client,
        pytest.raises(PrometheusUnreachable) as raised,
    ):
        client.query("up", AT)

    assert raised.value.message.startswith(
        "Prometheus at http://prometheus.test:9090 did not answer"
    )
    assert "ReadTimeout: timed out" in raised.value.message


@respx.mock
def test_a_non_json_error_page_is_reported_as_http_with_its_text(client):
    respx.post(f"{BASE}/api/v1/query").respond(401, text="Unauthorized\n")

    with pytest.raises(PrometheusQueryError) as raised:
        client.query("up", AT)

    assert raised.value.error_type == "http" and raised.value.error == "Unauthorized"


@respx.mock
def test_a_string_result_is_an_error_not_a_number(client):
    respx.post(f"{BASE}/api/v1/query").respond(
        json={
            "status": "success",
            "data": {"resultType": "string", "result": [AT.timestamp(), "x"]},
        }
    )

    with pytest.raises(PrometheusQueryError, match="carries no numbers"):
        client.query('"x"', AT)


@respx.mock
def test_a_scalar_result_is_one_unlabelled_series(client):
    respx.post(f"{BASE}/api/v1/query").respond(
        json={
            "status": "success",
            "data": {"resultType": "scalar", "result": [AT.timestamp(), "2.5"]},
        }
    )

    [series] = client.query("scalar(x)", AT).series

    assert series.labels == {} and series.points[0].value == 2.5


# ---------------------------------------------------------------- answers that cannot be judged


def success(result_type: object, result: object) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


NOW = AT.timestamp()
MALFORMED = {
    "result is an object": success("vector", {"oops": 1}),
    "result is a list of numbers": success("vector", [1, 2]),
    "series without a value": success("vector", [{"metric": {}}]),
    "value is not a pair": success("vector", [{"metric": {}, "value": [NOW]}]),
    "value is not a number": success("vector", [{"metric": {}, "value": [NOW, "abc"]}]),
    "value is a bare number": success("vector", [{"metric": {}, "value": [NOW, 0.5]}]),
    "time is not a number": success("vector", [{"metric": {}, "value": ["noon", "1"]}]),
    "time is null": success("vector", [{"metric": {}, "value": [None, "1"]}]),
    "labels are not a map": success("vector", [{"metric": ["a"], "value": [NOW, "1"]}]),
    "matrix values not a list": success("matrix", [{"metric": {}, "values": "1"}]),
    "unknown result type": success("banana", []),
    "no result type": {"status": "success", "data": {"result": []}},
    "data is a list": {"status": "success", "data": []},
    "no data": {"status": "success"},
    "body is a list": [1, 2, 3],
    "+Inf": success("vector", [{"metric": {}, "value": [NOW, "+Inf"]}]),
    "-Inf": success("vector", [{"metric": {}, "value": [NOW, "-Inf"]}]),
    "stamped 1970": success("vector", [{"metric": {}, "value": [0, "0.9999"]}]),
    "stamped an hour ago": success("vector", [{"metric": {}, "value": [NOW - 3600, "0.9999"]}]),
    "stamped tomorrow": success("vector", [{"metric": {}, "value": [NOW + 86400, "0.9999"]}]),
    "range with a 1970 point": success(
        "matrix", [{"metric": {}, "values": [[0, "1"], [NOW, "1"]]}]
    ),
}


@respx.mock
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_an_answer_that_cannot_be_judged_is_an_error_with_the_reason_never_a_crash(client, body):
    respx.post(f"{BASE}/api/v1/query").respond(json=body)
    respx.post(f"{BASE}/api/v1/query_range").respond(json=body)

    [instant, ranged] = client.fetch(
        [
            QueryRequest(query="up", at=AT),
            QueryRequest(query="up", at=AT, window=timedelta(minutes=2), step=timedelta(minutes=1)),
        ]
    )

    for result in (instant, ranged):
        assert result.error and not result.series, result


# ---------------------------------------------------------------- configuration from the project


def spec(**fields: str) -> PrometheusSpec:
    return PrometheusSpec.model_validate({"url": "${PROMETHEUS_URL}", **fields})


@respx.mock
def test_the_url_and_bearer_token_come_from_the_environment():
    route = respx.post(f"{BASE}/prefix/api/v1/query").respond(json=vector())
    env = {"PROMETHEUS_URL": f"{BASE}/prefix", "PROMETHEUS_TOKEN": "s3cret-token"}

    with PrometheusClient.from_spec(spec(bearer_token="${PROMETHEUS_TOKEN}"), env) as client:
        client.query("up", AT)

    assert route.calls.last.request.headers["Authorization"] == "Bearer s3cret-token"


@respx.mock
def test_basic_auth_comes_from_the_environment():
    route = respx.post(f"{BASE}/api/v1/query").respond(json=vector())
    env = {"PROMETHEUS_URL": BASE, "PROM_USER": "grafana", "PROM_PASS": "pw"}

    with PrometheusClient.from_spec(
        spec(username="${PROM_USER}", password="${PROM_PASS}"), env
    ) as client:
        client.query("up", AT)

    assert route.calls.last.request.headers["Authorization"] == "Basic Z3JhZmFuYTpwdw=="


def test_a_missing_variable_is_a_config_error_naming_it_not_its_value():
    with pytest.raises(ConfigError) as raised:
        PrometheusClient.from_spec(
            spec(bearer_token="${PROMETHEUS_TOKEN}"), {"PROMETHEUS_URL": BASE}
        )

    assert raised.value.message.startswith("PROMETHEUS_TOKEN is not set")


@respx.mock
def test_credentials_in_the_url_never_reach_error_messages():
    respx.post("http://prometheus.test:9090/api/v1/query").mock(
        side_effect=httpx.ConnectError("refused")
    )
    policy = RetryPolicy(deadline=timedelta(milliseconds=20), first_wait=timedelta(milliseconds=1))

    with (
        PrometheusClient("http://admin:hunter2@prometheus.test:9090", retry=policy) as client,
        pytest.raises(PrometheusUnreachable) as raised,
    ):
        client.query("up", AT)

    assert "hunter2" not in raised.value.message


@respx.mock
def test_a_retry_after_beyond_the_deadline_gives_up_at_once_instead_of_sleeping_past_it():
    route = respx.post(f"{BASE}/api/v1/query").respond(
        429,
        headers={"Retry-After": "120"},
        json={"status": "error", "errorType": "unavailable", "error": "too many queries"},
    )

    with (
        PrometheusClient(BASE, retry=FAST) as client,
        pytest.raises(PrometheusQueryError) as raised,
    ):
        client.query("up", AT)

    assert route.call_count == 1
    assert raised.value.status == 429 and raised.value.error == "too many queries"


@pytest.mark.parametrize("url", ["prometheus:9090", "ftp://prometheus", "http://"])
def test_a_url_that_is_not_http_is_a_config_error_not_an_unreachable_server(url: str):
    with pytest.raises(ConfigError, match="must look like http"):
        PrometheusClient(url)
