"""Load the published ``ciderstack`` 0.1.1 package (test-only) under another module name.

Our SDK owns the name ``ciderstack``; the published one is unpacked by `make install`
into .published/ (outside site-packages). It is loaded as ``ciderstack_published``
without ever replacing ``sys.modules["ciderstack"]`` for longer than its own import:
should it import itself by absolute name, the submodules it creates are re-homed
under the alias and ours are put back.
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


def _ours() -> dict[str, ModuleType]:
    return {
        name: module
        for name, module in sys.modules.items()
        if name == "ciderstack" or name.startswith("ciderstack.")
    }


def load_published(alias: str = ALIAS) -> ModuleType:
    """The published package as a module named ``alias`` (loaded once)."""
    with _lock:
        if alias in sys.modules:
            return sys.modules[alias]
        init = PUBLISHED_DIR / "__init__.py"
        if not init.is_file():
            raise RuntimeError(f"published ciderstack 0.1.1 not found at {PUBLISHED_DIR}; run `make install`")
        saved = _ours()
        spec = importlib.util.spec_from_file_location(
            alias, init, submodule_search_locations=[str(PUBLISHED_DIR)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        for name in saved:
            del sys.modules[name]
        sys.modules[alias] = module
        sys.modules["ciderstack"] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            for name in [n for n in sys.modules if n == alias or n.startswith(alias + ".")]:
                del sys.modules[name]
            raise
        finally:
            for name in list(_ours()):
                loaded = sys.modules.pop(name)
                if name != "ciderstack":
                    sys.modules.setdefault(alias + name[len("ciderstack"):], loaded)
            sys.modules.update(saved)
        return module
