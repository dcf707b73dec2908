"""The webhook benchmark's receiver: a minimal HTTP/1.1 server that answers every request 204.

`python receiver.py PORT OUT` listens on 127.0.0.1:PORT; for each request it writes one line
to OUT, "<wall-clock seconds> <webhook-id>" (what the nginx receiver logs), flushed when it
is stopped (SIGTERM). scripts/bench/webhooks.py uses it when nginx is not installed. It
stands in for the dashboard, which runs on another box: it does the least work an HTTP
server can (it reads two headers and no JSON), so on this shared box it takes as little
CPU as it can from `scim serve`; its CPU is reported apart from the server's.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class Connection(asyncio.Protocol):
    """One keep-alive connection: split the stream into requests, answer each, note its arrival."""

    def __init__(self, out):
        self.out, self.buffer, self.transport = out, b"", None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode("latin-1").lower()
            size = int(_header(head, "content-length") or 0)
            if len(self.buffer) < end + 4 + size:
                return
            self.buffer = self.buffer[end + 4 + size:]
            self.transport.write(ANSWER)
            self.out.write(f"{time.time():.3f} {_header(head, 'webhook-id')}\n".encode())


def _header(head: str, name: str) -> str:
    """Return one header's value from a lower-cased request head ("" if absent)."""
    start = head.find(f"\r\n{name}:")
    if start < 0:
        return ""
    start += len(name) + 3
    end = head.find("\r\n", start)
    return head[start:end if end >= 0 else None].strip()


async def serve(port: int, path: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with open(path, "ab", buffering=1 << 20) as out:
        server = await loop.create_server(lambda: Connection(out), "127.0.0.1", port, backlog=128)
        print("ready", flush=True)
        await stop.wait()
        server.close()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
