"""docker/healthcheck.py (the image's HEALTHCHECK) against the real app served by live_server.

Docker cannot run here, so the script is run as Docker would run it: a separate process that only
knows the container's environment (ALLOWED_HOSTS) and the port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "healthcheck.py"


def run_healthcheck(port: int, allowed_hosts: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ALLOWED_HOSTS=allowed_hosts, FLEETUI_HEALTHCHECK_PORT=str(port))
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.django_db(transaction=True)
def test_it_is_healthy_when_the_login_page_answers_200(live_server: Any) -> None:
    port = int(live_server.url.rsplit(":", 1)[1])
    # The first usable ALLOWED_HOSTS entry is the Host sent (a leading dot and "*" are handled).
    for allowed in ("localhost", ".localhost,127.0.0.1", "*,localhost"):
        result = run_healthcheck(port, allowed)
        assert result.returncode == 0, (allowed, result.stdout, result.stderr)
        assert result.stdout.strip() == "login page: HTTP 200"


@pytest.mark.django_db(transaction=True)
def test_it_is_unhealthy_when_the_app_refuses_the_host(live_server: Any) -> None:
    port = int(live_server.url.rsplit(":", 1)[1])
    result = run_healthcheck(port, "fleet.example.com")  # not in the test settings' ALLOWED_HOSTS: 400
    assert result.returncode == 1
    assert result.stdout.strip() == "login page: HTTP 400"


def test_it_is_unhealthy_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    result = run_healthcheck(port, "localhost")
    assert result.returncode == 1
    assert result.stdout.startswith("unhealthy:")
