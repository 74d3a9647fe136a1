"""The published `ciderstack` 0.1.1 client (test-only), importable next to our own `ciderstack`.

`make install` unpacks it into .published/ciderstack-0.1.1/ (outside site-packages, so it never
shadows ours). `load_published()` loads it under the module name `ciderstack_published`:

- it is loaded from its file path with importlib, under the alias; its own imports are relative
  (`from .client import ...`), so they resolve to `ciderstack_published.client` / `.types`;
- for the duration of that import only, `sys.modules["ciderstack"]` (and its submodules) are swapped
  out and then restored exactly, so that an absolute `import ciderstack` inside it, should a future
  version do one, cannot pick up ours, and ours is untouched afterwards;
- it is loaded once per process, under a lock; any other loader that uses the same alias
  (tests/sdk/published.py does) gets the same module object.

Usage:  published = load_published();  published.FleetClient(host, api_token=..., port=...)
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

PUBLISHED_DIR = Path(__file__).resolve().parents[2] / ".published" / "ciderstack-0.1.1" / "ciderstack"
ALIAS = "ciderstack_published"
_lock = threading.Lock()


def load_published() -> ModuleType:
    with _lock:
        if ALIAS in sys.modules:
            return sys.modules[ALIAS]
        init = PUBLISHED_DIR / "__init__.py"
        if not init.is_file():
            raise RuntimeError(f"published ciderstack 0.1.1 not found at {PUBLISHED_DIR}; run `make install`")
        ours = {k: v for k, v in sys.modules.items() if k == "ciderstack" or k.startswith("ciderstack.")}
        spec = importlib.util.spec_from_file_location(ALIAS, init, submodule_search_locations=[str(PUBLISHED_DIR)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        for name in ours:
            del sys.modules[name]
        sys.modules[ALIAS] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
                del sys.modules[name]
            raise
        finally:
            # Anything it imported as `ciderstack[.x]` is re-homed under the alias; ours go back.
            for name in [n for n in sys.modules if n == "ciderstack" or n.startswith("ciderstack.")]:
                sys.modules.setdefault(ALIAS + name[len("ciderstack"):], sys.modules.pop(name))
            sys.modules.update(ours)
        return module
