"""A webhook receiver for the benchmarks, run as its own process on 127.0.0.1.

    python -m bench.receiver --port 0 --ready-file PATH

It is a bare asyncio protocol over uvloop (HTTP/1.1, keep-alive, no framework), so it costs
far less per request than the sender it measures: each complete request is answered `200` at
once and noted as (arrival time on CLOCK_MONOTONIC, vacancy id found in the body, webhook-id,
wall-clock time). CLOCK_MONOTONIC is one clock for every process of the machine, so arrival times
compare with the PATCH-return times taken by the benchmark process; the wall-clock time compares
with the timestamps the services write in their databases.

Control requests (same port): `GET /__count` answers the number of requests noted so far;
`POST /__take` answers every note as JSON and forgets them. Signatures are not verified (the
benchmark measures the platform, not the receiver); `webhook-id`s are kept so duplicates show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from pathlib import Path

VACANCY = re.compile(rb'"vacancy_id":"([^"]*)"')
WEBHOOK_ID = re.compile(rb"\r\nwebhook-id: *([^\r]*)", re.IGNORECASE)
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class Notes:
    def __init__(self) -> None:
        self.items: list[tuple[float, str, str, float]] = []


class Receiver(asyncio.Protocol):
    def __init__(self, notes: Notes) -> None:
        self.notes = notes
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[: end + 2]
            length_match = CONTENT_LENGTH.search(head)
            length = int(length_match.group(1)) if length_match else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.handle(head, body)

    def handle(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        at, wall = time.monotonic(), time.time()
        line = head[: head.find(b"\r\n")]
        if line.startswith(b"GET /__count"):
            self.reply(json.dumps({"count": len(self.notes.items)}).encode())
            return
        if line.startswith(b"POST /__take"):
            taken, self.notes.items = self.notes.items, []
            self.reply(json.dumps(taken).encode())
            return
        vacancy = VACANCY.search(body)
        webhook_id = WEBHOOK_ID.search(head)
        self.notes.items.append(
            (
                at,
                vacancy.group(1).decode() if vacancy else "",
                webhook_id.group(1).decode() if webhook_id else "",
                wall,
            )
        )
        self.transport.write(OK)

    def reply(self, body: bytes) -> None:
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )


async def serve(port: int, ready_file: Path | None) -> None:
    notes = Notes()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Receiver(notes), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": bound, "pid": os.getpid()}), encoding="utf-8")
        tmp.replace(ready_file)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, default=None)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(serve(args.port, args.ready_file))
    else:
        uvloop.run(serve(args.port, args.ready_file))


if __name__ == "__main__":
    main()
