"""A worker that is stopping (SIGHUP's restart, SIGTERM) still answers a connection it has just accepted."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from skilljar_scim.base.config import Settings
from skilljar_scim.web.worker import ScimWorker, limits_of


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/scim+json")])
    return [b"{}"]


def _stopping_worker() -> ScimWorker:
    """A ScimWorker as its loop has it after SIGTERM, without gunicorn's process around it."""
    worker = ScimWorker.__new__(ScimWorker)
    worker.settings = Settings()
    worker.limits, worker.ssl, worker.wsgi = limits_of(worker.settings), None, _app
    worker.clients, worker.pool = {}, ThreadPoolExecutor(1)
    worker.cfg, worker.notify = SimpleNamespace(graceful_timeout=5), lambda: None
    worker.stopping = asyncio.Event()
    worker.stopping.set()
    return worker


async def _accepted_while_draining() -> bytes:
    worker = _stopping_worker()
    server = await asyncio.start_server(worker._client, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    for _ in range(200):  # until the worker holds the connection (bounded)
        if worker.clients:
            break
        await asyncio.sleep(0.01)
    drain = asyncio.create_task(worker._drain([server]))
    await asyncio.sleep(0.2)  # several of the drain's rounds pass before the request arrives
    writer.write(b"GET /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    await drain
    writer.close()
    return answer


def test_worker_stopping_serves_a_connection_it_accepted_then_closes() -> None:
    answer = asyncio.run(_accepted_while_draining())
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200") and b"connection: close" in head
