"""The deployment files README "Deploying" shows are valid for the tools that read them (issue 11 rule 7).

nginx, caddy and systemd-analyze are installed by .ci/run (apt-get); these tests need them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy"
README = Path(__file__).resolve().parents[1] / "README.md"


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert found, f"{name} is not installed: .ci/run installs it (apt-get install nginx-light caddy systemd)"
    return found


@pytest.mark.parametrize("name", ["nginx.conf", "Caddyfile", "scim.service", "scim-status.service", "scim-status.timer",
                                  "check_scim"])
def test_deploy_files_shown_in_readme(name: str) -> None:
    """README quotes each file as it is, so the checked file is the one people copy."""
    assert (DEPLOY / name).read_text().strip() in README.read_text(), f"README's copy of docs/deploy/{name} differs"


def test_deploy_nginx_snippet_passes_nginx_t(tmp_path: Path) -> None:
    issued = trustme.CA().issue_cert("scim.example.com")
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "fullchain.pem"))
    issued.private_key_pem.write_to_path(str(tmp_path / "privkey.pem"))
    snippet = (DEPLOY / "nginx.conf").read_text().replace("/etc/letsencrypt/live/scim.example.com", str(tmp_path))
    (tmp_path / "scim.conf").write_text(snippet)
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n    include {tmp_path}/scim.conf;\n}}\n")
    result = subprocess.run([_tool("nginx"), "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", str(main)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_deploy_caddyfile_validates(tmp_path: Path) -> None:
    result = subprocess.run([_tool("caddy"), "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr, result.stderr


def test_deploy_systemd_unit_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify, with ExecStart pointing at this checkout's `scim` (it must exist)."""
    scim = Path(sys.executable).with_name("scim")
    unit = tmp_path / "scim.service"
    unit.write_text((DEPLOY / "scim.service").read_text().replace("/opt/skilljar-scim/.venv/bin/scim", str(scim)))
    result = subprocess.run([_tool("systemd-analyze"), "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_deploy_status_timer_and_its_service_verify(tmp_path: Path) -> None:
    """The `scim status --check` timer (README "Status and monitoring") and the unit it starts."""
    scim = Path(sys.executable).with_name("scim")
    service = (DEPLOY / "scim-status.service").read_text().replace("/opt/skilljar-scim/.venv/bin/scim", str(scim))
    (tmp_path / "scim-status.service").write_text(service)
    (tmp_path / "scim-status.timer").write_text((DEPLOY / "scim-status.timer").read_text())
    result = subprocess.run([_tool("systemd-analyze"), "verify", str(tmp_path / "scim-status.timer"),
                             str(tmp_path / "scim-status.service")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
