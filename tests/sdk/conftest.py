"""Fixtures for the SDK tests.

Helper modules of this folder are loaded by file path (under names unique to this
folder), so the tests work whatever pytest's import mode and whatever other test
folders call their helpers.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent


def _load_helper(name: str) -> ModuleType:
    module_name = f"_fleetui_tests_sdk_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


recorder = _load_helper("recorder")
published_loader = _load_helper("published")


@pytest.fixture(scope="session")
def published() -> ModuleType:
    """The published ciderstack 0.1.1 package, loaded as `ciderstack_published`."""
    return published_loader.load_published()


@pytest.fixture(scope="session")
def _recording_server_session() -> Iterator[recorder.RecordingServer]:
    server = recorder.RecordingServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def recording_server(_recording_server_session: recorder.RecordingServer) -> recorder.RecordingServer:
    """A recording server with no recorded requests and no overrides (shared, reset per test)."""
    server = _recording_server_session
    server.overrides.clear()
    server.take()
    return server


@pytest.fixture(scope="session")
def canned() -> dict:
    return recorder.CANNED
