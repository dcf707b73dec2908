"""HTTPS served directly, and SIGHUP re-reading the secret keys in every worker (issue 11 rules 7, 9)."""

from __future__ import annotations

import re
import signal
import ssl
import time
import urllib.error
import urllib.request

import pytest
import trustme

from skilljar_scim.base import keyfile

pytestmark = pytest.mark.e2e

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "tls@example.com"}
HANG_GUARD_S = 30


def _certificate(folder, ca: trustme.CA):
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = folder / "cert.pem", folder / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_serve_tls_with_certfile_and_keyfile(make_server, tmp_path) -> None:
    ca = trustme.CA()
    cert, key = _certificate(tmp_path, ca)
    server = make_server(workers=1, threads=2, start=False,
                         settings={"server": {"certfile": str(cert), "keyfile": str(key)}})
    server.ssl_context = _trusting(ca)
    server.start()
    token = server.token()["token"]
    status, headers, created = server.request("POST", "/Users", token, USER)
    assert status == 201 and headers["Location"].startswith("https://"), headers
    assert server.request("GET", f"/Users/{created['id']}", token)[0] == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://127.0.0.1:{server.port}/healthz", timeout=HANG_GUARD_S)  # our CA only
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=HANG_GUARD_S).read()  # no plain HTTP


@pytest.mark.parametrize(("flags", "message"), [
    (["--certfile", "cert.pem"], "must be given together"),
    (["--certfile", "missing.pem", "--keyfile", "missing.pem"], "cannot load the TLS certificate"),
])
def test_serve_tls_bad_files_are_config_errors(make_server, flags, message) -> None:
    server = make_server(start=False)
    assert server.cli("init").returncode == 0
    result = server.cli("serve", *flags)
    assert result.returncode == 3 and result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _worker_pids(server) -> set[str]:
    return set(re.findall(r"Booting worker with pid: (\d+)", server.log.read_text()))


def _wait_for(predicate) -> None:
    deadline = time.monotonic() + HANG_GUARD_S  # a hang guard; the verdict is the predicate
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        time.sleep(0.05)


def test_serve_sighup_rereads_keys_in_every_worker(make_server, database_url) -> None:
    server = make_server(database_url=database_url, workers=2, threads=2)
    old_token = server.token("old")["token"]
    booted = _worker_pids(server)
    keyfile.create(server.key_path)  # replaced: the old key is gone
    new_token = server.token("new")["token"]
    server.process.send_signal(signal.SIGHUP)
    # Reloaded when every worker that booted before the signal has exited (new ones replaced them).
    _wait_for(lambda: all(f"Worker exiting (pid: {pid})" in server.log.read_text() for pid in booted))
    assert "SIGHUP: secret keys and TLS certificate read again" in server.log.read_text()
    for _ in range(8):  # fresh connections, spread over both workers
        assert server.request("GET", "/Users", new_token, headers={"Connection": "close"})[0] == 200
        assert server.request("GET", "/Users", old_token, headers={"Connection": "close"})[0] == 401


def test_serve_sighup_keeps_old_key_while_listed(make_server) -> None:
    server = make_server(workers=1, threads=1)
    old_token = server.token("old")["token"]
    old_key = server.key_path.read_text()
    keyfile.create(server.key_path)
    server.key_path.write_text(old_key + server.key_path.read_text())  # rotation: old line kept, new one signs
    new_token = server.token("new")["token"]
    booted = _worker_pids(server)
    server.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: all(f"Worker exiting (pid: {pid})" in server.log.read_text() for pid in booted))
    assert server.request("GET", "/Users", new_token)[0] == 200
    assert server.request("GET", "/Users", old_token)[0] == 200


def test_serve_sighup_with_unreadable_key_keeps_serving(make_server) -> None:
    server = make_server(workers=1, threads=1)
    token = server.token()["token"]
    server.key_path.chmod(0o644)  # unsafe: refused, so the running keys stay
    server.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: "SIGHUP: keeping the running keys" in server.log.read_text())
    assert server.request("GET", "/Users", token)[0] == 200
    assert server.process.poll() is None
