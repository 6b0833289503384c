"""The server pool's choices and failover, and how the clients classify errors (pure logic, with a fake
clock and fake servers; the batch tests run it against real servers)."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from client.matting_client import MattingError, RequestError, ServerError, ServerUnavailable, classify
from client.pool import PooledClient, ServerPool, server_urls
from matting.options import OutputOptions


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_server_urls_from_repeated_and_comma_separated_options():
    assert server_urls(None) == ["127.0.0.1:8001"] and server_urls(None, "http") == ["127.0.0.1:8000"]
    assert server_urls("a:8001") == ["a:8001"]
    assert server_urls(["a:8001, b:8001", "c:8001", "a:8001"]) == ["a:8001", "b:8001", "c:8001"]


def test_pool_spreads_by_load_in_turn_and_takes_failing_servers_out_until_ready():
    ready, probes, clock = {"a": True, "b": True, "c": True}, [], FakeClock()

    def is_ready(url):
        probes.append(url)
        return ready[url]

    pool = ServerPool(["a", "b", "c"], is_ready, cooldown_s=5.0, clock=clock)
    assert [pool.acquire() for _ in range(6)] == ["a", "b", "c", "a", "b", "c"], "least loaded, ties in turn"
    pool.release("b")
    assert pool.acquire() == "b", "the server with a free slot first"
    for url in ["a", "a", "b", "b", "c", "c"]:
        pool.release(url)
    assert [pool.acquire() for _ in range(3)] == ["c", "a", "b"] and not probes, "in turn, after the last one chosen"

    ready["b"] = False
    pool.release("b", "connection refused")
    pool.release("a")
    pool.release("c")
    assert [pool.acquire() for _ in range(4)] == ["c", "a", "c", "a"], "a server that failed gets nothing"
    assert pool.down_summary() == "b: connection refused" and pool.summary()["b"] == {"errors": 1, "down": "connection refused"}
    clock.now = 4.9
    pool.acquire()
    assert not probes, "not asked again before the cool-down is over"
    clock.now = 5.0
    pool.acquire()
    assert probes == ["b"] and pool.summary()["b"]["down"], "asked once, still not ready"
    ready["b"] = True
    clock.now = 9.9
    pool.acquire()
    assert probes == ["b"], "the next question waits for another cool-down"
    clock.now = 10.0
    assert pool.acquire() == "b" and probes == ["b", "b"], "ready again: back in, and the least loaded"
    assert pool.summary()["b"] == {"errors": 1, "down": None}


def test_pool_with_every_server_down_answers_none_until_one_is_ready():
    ready = {"a": False, "b": False}
    pool = ServerPool(["a", "b"], lambda url: ready[url], cooldown_s=60.0, clock=FakeClock())
    for url in ["a", "b"]:
        assert pool.acquire() == url
        pool.release(url, f"{url} is gone")
    assert pool.acquire() is None and pool.down_summary() == "a: a is gone; b: b is gone"
    assert not pool.readmit(force=True) and pool.acquire() is None
    ready["b"] = True
    assert pool.readmit(force=True), "force asks at once, whatever the cool-down"
    assert pool.acquire() == "b" and pool.acquire() == "b"


@pytest.mark.parametrize(
    ("raised", "kind"),
    [(InferenceServerException("kind must be one of …", status="StatusCode.INVALID_ARGUMENT"), RequestError),
     (InferenceServerException("kind must be one of …", status="400"), RequestError),
     (InferenceServerException("failed to connect to all addresses", status="StatusCode.UNAVAILABLE"), ServerUnavailable),
     (InferenceServerException("Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED"), ServerUnavailable),
     (InferenceServerException("model not ready", status="503"), ServerUnavailable),
     (ConnectionRefusedError(111, "Connection refused"), ServerUnavailable),
     (InferenceServerException("internal server error while processing the image", status="StatusCode.INTERNAL"), ServerError),
     (InferenceServerException("internal server error while processing the image", status="500"), ServerError)],
    ids=["grpc-invalid", "http-400", "grpc-unavailable", "grpc-deadline", "http-503", "refused", "grpc-internal", "http-500"],
)
def test_triton_errors_are_classified_by_status(raised, kind):
    error = classify(raised)
    assert type(error) is kind and isinstance(error, MattingError)
    assert error.bad_input == (kind is RequestError)


class FakeServer:
    """Answers every request with ``error`` (or a result when None) and counts the requests."""

    def __init__(self, error: MattingError | None = None):
        self.error, self.requests = error, 0

    def remove_background(self, data, options, background, with_alpha):
        self.requests += 1
        if self.error:
            raise self.error
        return type("Result", (), {"data": b"result"})


def pooled(servers: dict[str, FakeServer]) -> PooledClient:
    client = PooledClient(list(servers), retries=3, backoff_s=0.0)
    client.pool._is_ready = lambda url: servers[url].error is None
    client._client = servers.__getitem__
    client._forget = lambda url: None
    return client


@pytest.mark.parametrize("error", [RequestError("65500×1 is too large for WebP"), ServerError("internal server error")],
                         ids=["request-error", "server-error"])
def test_a_per_request_error_is_reported_at_once_and_never_takes_its_server_out(error):
    servers = {"a": FakeServer(error), "b": FakeServer(error)}
    client = pooled(servers)
    with pytest.raises(type(error), match=str(error)):
        client.remove_background(b"image", OutputOptions())
    assert servers["a"].requests + servers["b"].requests == 1, "never retried, on no server"
    assert all(state == {"errors": 0, "down": None} for state in client.pool.summary().values())


def test_an_unavailable_server_is_taken_out_and_the_request_goes_to_another():
    servers = {"a": FakeServer(ServerUnavailable("connection refused")), "b": FakeServer()}
    client = pooled(servers)
    assert client.remove_background(b"image", OutputOptions()) == (b"result", "b")
    assert client.pool.summary() == {"a": {"errors": 1, "down": "connection refused"}, "b": {"errors": 0, "down": None}}
    servers["b"].error = ServerUnavailable("gone too")
    with pytest.raises(ServerUnavailable, match="inference server unavailable after 4 attempts"):
        client.remove_background(b"image", OutputOptions())
