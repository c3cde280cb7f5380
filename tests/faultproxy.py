"""A fault-injecting HTTP proxy for the tests, in front of a real `influxd`: what a load
balancer or a sick InfluxDB does that the real server cannot be made to do on demand.

Raw asyncio streams, one request per client connection (every answer says
`Connection: close`, so the client opens a fresh connection for the next). The mode is
switched at run time with `set`; it applies to requests whose path starts with one of
`paths` (default: every path), the others pass through:
- `pass`: forwarded as it is;
- `html500`: answered 500 with an HTML page, as nginx or a cloud load balancer does;
- `hang`: the request is read and never answered (the connection stays open);
- `slow`: forwarded after `delay_s`.
`seen` counts the requests each mode handled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

Mode = Literal["pass", "html500", "hang", "slow"]

HTML_500 = (b"<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n"
            b"<body><center><h1>500 Internal Server Error</h1></center>\n"
            b"<hr><center>nginx/1.18.0</center></body></html>\n")


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.mode: Mode = "pass"
        self.paths: tuple[str, ...] = ("/",)
        self.delay_s = 0.0
        self.seen: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def set(self, mode: Mode, *, paths: tuple[str, ...] = ("/",), delay_s: float = 0.0) -> None:
        self.mode, self.paths, self.delay_s = mode, paths, delay_s

    def url(self, database: str) -> str:
        return f"influxdb://127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in self._handlers:  # requests held (hang, slow) too
                task.cancel()
            await asyncio.gather(*self._handlers)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            request = head + await reader.readexactly(length)
            path = head.split(b" ", 2)[1].decode()
            mode = self.mode if path.startswith(self.paths) else "pass"
            self.seen[mode] += 1
            if mode == "hang":
                await reader.read()  # until the client gives up and closes
                return
            if mode == "html500":
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\n"
                             b"Content-Type: text/html\r\nConnection: close\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(HTML_500) + HTML_500)
                await writer.drain()
                return
            if mode == "slow":
                await asyncio.sleep(self.delay_s)
            writer.write(await self._forward(request))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass  # the client went away
        except asyncio.CancelledError:  # closed with a request held (hang, slow): asyncio
            pass  # would log the cancelled handler as an error
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _forward(self, request: bytes) -> bytes:
        head, _, body = request.partition(b"\r\n\r\n")
        lines = [line for line in head.split(b"\r\n")
                 if not line.lower().startswith(b"connection:")]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body)
            await up_writer.drain()
            return await up_reader.read()  # influxd closes after its answer
        finally:
            up_writer.close()


@asynccontextmanager
async def fault_proxy(upstream_port: int) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(upstream_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
