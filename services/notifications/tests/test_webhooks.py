"""The webhook sender against real HTTP servers on 127.0.0.1: keep-alive connections are reused,
a long answer is not downloaded, a cut body does not undo an answer, literal addresses skip DNS."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from fabkit.testing import read_http_request
from notifications.webhooks import MAX_DRAINED_BODY, post, resolve_target

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


class Server:
    """A bare HTTP/1.1 server; `answer(writer)` writes each response."""

    def __init__(self, answer: Callable[[asyncio.StreamWriter], asyncio.Future[None] | None]):
        self.answer = answer
        self.connections = 0
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await read_http_request(reader) is not None:
                self.requests += 1
                result = self.answer(writer)
                if result is not None:
                    await result
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()


def ok(body: bytes) -> Callable[[asyncio.StreamWriter], None]:
    def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)

    return answer


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, follow_redirects=False, trust_env=False) as c:
        yield c


async def send(client: httpx.AsyncClient, port: int, timeout_s: float = 5.0):  # type: ignore[no-untyped-def]
    target = await resolve_target(f"http://127.0.0.1:{port}/hook", LOOPBACK)
    return await post(client, target, {"webhook-id": "msg_1"}, b"{}", timeout_s=timeout_s)


async def test_keep_alive_connections_are_reused(client: httpx.AsyncClient) -> None:
    async with Server(ok(b'{"thanks":true}')) as server:
        results = [await send(client, server.port) for _ in range(20)]
    assert all(r.ok for r in results)
    assert server.requests == 20
    assert server.connections == 1


async def test_a_long_answer_is_not_downloaded_and_its_connection_is_dropped(
    client: httpx.AsyncClient,
) -> None:
    huge = b"x" * (MAX_DRAINED_BODY * 16)
    async with Server(ok(huge)) as server:
        first = await send(client, server.port)
        second = await send(client, server.port)
    assert first.ok and second.ok
    assert server.connections == 2  # the first connection was closed, not drained


async def test_a_body_that_stalls_after_the_status_keeps_the_answer(
    client: httpx.AsyncClient,
) -> None:
    async def stall(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\ncontent-length: 10\r\n\r\nab"
        )
        await writer.drain()
        await asyncio.sleep(3)

    async with Server(stall) as server:
        result = await send(client, server.port, timeout_s=0.5)
    assert (result.status_code, result.error, result.retry_after_s) == (503, "HTTP 503", 7.0)


async def test_no_answer_at_all_is_a_timeout(client: httpx.AsyncClient) -> None:
    async def silent(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3)

    async with Server(silent) as server:
        result = await send(client, server.port, timeout_s=0.3)
    assert result.status_code is None and result.error == "timed out after 0.3s"


async def test_a_literal_address_is_checked_without_a_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_dns(*_: object, **__: object) -> None:
        raise AssertionError("getaddrinfo called for a literal address")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_dns)
    target = await resolve_target("http://127.0.0.1:8080/x", LOOPBACK)
    assert target.address == "127.0.0.1"
    with pytest.raises(ValueError, match="internal address"):
        await resolve_target("http://10.0.0.1/x", LOOPBACK)
