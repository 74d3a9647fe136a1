"""Child processes of the benchmark: start, wait for, measure (CPU, peak RSS) and always stop them.

Linux only (reads /proc), like the rest of the benchmark.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A step of the benchmark cannot go on (the message says why, in plain words)."""


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def children_of(pid: int) -> list[int]:
    """Every live descendant of pid (scans /proc; fine for the handful of processes we start)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if not stat:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found.extend(kids)
        frontier.extend(kids)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (its own threads; not its children)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    # fields[11], fields[12] = utime, stime (fields 14 and 15 of proc(5), counted from 1).
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    return cpu_seconds(pid) + sum(cpu_seconds(p) for p in children_of(pid))


def status_kb(pid: int, key: str) -> int:
    """A field of /proc/<pid>/status in kB (VmHWM = peak RSS, VmRSS = current RSS), 0 if gone."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def free_port_range(count: int, start: int = 20000, stop: int = 60000) -> int:
    """The first port P such that P..P+count-1 can all be bound on 127.0.0.1 right now."""
    port = start
    while port + count < stop:
        bad = None
        for p in range(port, port + count):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    bad = p
                    break
        if bad is None:
            return port
        port = bad + 1
    raise BenchError(f"no run of {count} free TCP ports on 127.0.0.1 between {start} and {stop}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_port(port: int, *, timeout: float, what: str) -> None:
    def listening() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=timeout, what=what)


class Managed:
    """One child process (in its own process group, so stopping it stops its children too)."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log_dir: Path,
                 stdin: bool = False, stdout_pipe: bool = False) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log,
            start_new_session=True,
            text=stdout_pipe or stdin,
            bufsize=1 if (stdout_pipe or stdin) else -1,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with code {self.proc.returncode}; see {self.log_path}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def tree(self) -> list[int]:
        return [self.pid, *children_of(self.pid)] if self.alive() else []

    def cpu(self) -> float:
        return tree_cpu_seconds(self.pid) if self.alive() else 0.0

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        else:
            # The leader is gone; make sure nothing it started outlives it.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                try:
                    stream.close()
                except OSError:
                    pass
        self._log.close()


class Processes:
    """Everything the benchmark started; stop_all() in reverse order of start, always."""

    def __init__(self) -> None:
        self._all: list[Managed] = []

    def add(self, proc: Managed) -> Managed:
        self._all.append(proc)
        return proc

    def stop(self, proc: Managed) -> None:
        proc.stop()
        if proc in self._all:
            self._all.remove(proc)

    def stop_all(self) -> None:
        while self._all:
            proc = self._all.pop()
            try:
                proc.stop()
            except Exception as exc:  # keep stopping the others
                print(f"bench: could not stop {proc.name}: {exc}")
