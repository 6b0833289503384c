"""The server pool's choices and failover (pure logic, with a fake clock; the batch tests run it against real servers)."""

from __future__ import annotations

from client.pool import ServerPool, server_urls


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
