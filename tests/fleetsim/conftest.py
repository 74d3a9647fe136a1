"""Fixtures for the fleetsim tests: a running fleet, a raw RPC helper and the published client.

The published client module is loaded by file path (see published.py) under a name unique to this
folder, whatever pytest's import mode.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from fleetsim import SimFleet, SimNode


def _load_helper(name: str) -> ModuleType:
    module_name = f"_fleetui_tests_fleetsim_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.fixture(scope="session")
def published() -> ModuleType:
    """The published ciderstack 0.1.1 package, as `ciderstack_published`."""
    return _load_helper("published").load_published()


@pytest.fixture()
def fleet(sim_fleet: Callable[..., SimFleet]) -> SimFleet:
    """Manager + 2 workers, 4 VMs each, starting/stopping 0.2 s, tasks 1 s."""
    return sim_fleet()


@pytest.fixture()
def node(fleet: SimFleet) -> SimNode:
    return fleet.nodes[1]


class Rpc:
    """Raw wire access: `rpc(node, "ListVMs")` -> (status, parsed JSON); token defaults to fullAccess."""

    def __init__(self) -> None:
        self.session = requests.Session()

    def __call__(self, node: SimNode, method: str, *, token: str | None = None, auth: dict[str, Any] | None = None,
                 http_timeout: float = 5.0, **fields: Any) -> tuple[int, Any]:
        body: dict[str, Any] = dict(auth) if auth is not None else {"apiToken": token or node.api_token}
        body.update(fields)
        r = self.session.post(f"http://{node.host}:{node.port}/rpc/{method}", json=body, timeout=http_timeout)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    def ok(self, node: SimNode, method: str, **fields: Any) -> dict[str, Any]:
        status, body = self(node, method, **fields)
        assert status == 200, (status, body)
        assert isinstance(body, dict) and body.get("success", True) is True, body
        return body

    def fails(self, node: SimNode, method: str, **fields: Any) -> str:
        status, body = self(node, method, **fields)
        assert status == 200, (status, body)
        assert body["success"] is False, body
        assert isinstance(body["error"], str) and body["error"]
        return body["error"]


@pytest.fixture()
def rpc() -> Iterator[Rpc]:
    r = Rpc()
    yield r
    r.session.close()


@pytest.fixture()
def pub(published: ModuleType) -> Callable[..., Any]:
    """pub(node, readonly=False, node_id=None) -> a published FleetClient for that node."""

    def make(node: SimNode, readonly: bool = False, node_id: str | None = None) -> Any:
        if node_id is not None:
            return published.FleetClient(node.host, node_id=node_id, port=node.port, timeout=5)
        token = node.readonly_token if readonly else node.api_token
        return published.FleetClient(node.host, api_token=token, port=node.port, timeout=5)

    return make


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; return its value (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture()
def wait() -> Callable[..., Any]:
    return wait_for
