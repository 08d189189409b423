"""The metrics layer against a real Prometheus: instant and range queries at known times."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.prometheus import SYNTHETIC, PrometheusServer
from tgk_deploy.errors import PrometheusQueryError, PrometheusUnreachable
from tgk_deploy.triggers.prometheus import PrometheusClient, RetryPolicy
from tgk_deploy.triggers.samples import QueryRequest

pytestmark = pytest.mark.prometheus

STEADY = SYNTHETIC.case("layer-steady")
STEADY.counter("tgk_email_delivery_total", 9.95, {"status": "delivered", "version_id": "v1"})
STEADY.counter("tgk_email_delivery_total", 0.05, {"status": "failed", "version_id": "v1"})
STEADY.gauge("tgk_email_ai_accuracy_ratio", 0.9, {"version_id": "v1"})


@pytest.fixture
def client(prometheus: PrometheusServer):
    with PrometheusClient(prometheus.url) as client:
        yield client


def test_an_instant_query_returns_one_sample_per_series_at_the_asked_time(client):
    result = client.query("sum by (status) (rate(tgk_email_delivery_total[1h]))", STEADY.at)

    assert result.error is None and result.result_type == "vector"
    rates = {s.labels["status"]: s.points[0].value for s in result.series}
    assert rates == pytest.approx({"delivered": 9.95, "failed": 0.05})
    assert all(s.points[0].time == STEADY.at for s in result.series)


def test_a_range_query_returns_every_step_of_the_window(client):
    result = client.query_range(
        "tgk_email_ai_accuracy_ratio",
        STEADY.at - timedelta(minutes=10),
        STEADY.at,
        timedelta(minutes=1),
    )

    assert result.result_type == "matrix"
    [series] = result.series
    assert [p.value for p in series.points] == [0.9] * 11
    assert series.points[0].time == STEADY.at - timedelta(minutes=10)


def test_a_query_before_any_data_is_empty_not_an_error(client):
    result = client.query("tgk_email_ai_accuracy_ratio", STEADY.start - timedelta(hours=2))

    assert result.error is None and result.series == []


def test_a_bad_query_surfaces_prometheus_error_type_and_message_verbatim(client):
    with pytest.raises(PrometheusQueryError) as raised:
        client.query("rate(tgk_email_delivery_total[1h)", STEADY.at)

    assert raised.value.error_type == "bad_data"
    assert raised.value.status == 400
    assert "parse error" in raised.value.error


def test_fetch_answers_each_request_and_turns_failures_into_result_errors(client):
    good = QueryRequest(query="sum(tgk_email_ai_accuracy_ratio)", at=STEADY.at)
    bad = QueryRequest(query="sum(", at=STEADY.at)

    results = client.fetch([good, bad, good])

    assert [r.request for r in results] == [good, bad, good]
    assert results[0].series[0].points[0].value == pytest.approx(0.9)
    assert results[1].error is not None and results[1].error.startswith("Prometheus bad_data")


def test_a_server_that_is_not_there_is_unreachable_after_the_retry_deadline():
    policy = RetryPolicy(
        deadline=timedelta(milliseconds=300),
        first_wait=timedelta(milliseconds=20),
        max_wait=timedelta(milliseconds=50),
    )
    with (
        PrometheusClient("http://127.0.0.1:9", retry=policy) as client,
        pytest.raises(PrometheusUnreachable) as raised,
    ):
        client.query("up", STEADY.at)

    assert "did not answer" in raised.value.message
    assert "ConnectError" in raised.value.message
