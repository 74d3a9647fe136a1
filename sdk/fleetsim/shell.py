"""A small, plausible macOS shell for ExecCommand on a simulated VM.

Nothing here runs a real process: each builtin produces stdout/stderr/exit code from the VM's
facts. `sleep N` (and the commands that never end by themselves) report how long they would run;
the server really waits that long, capped by the request's timeout.

Grammar: commands separated by `;`, `&&`, `||`, and `|` (stdout of one is stdin of the next),
words split with shlex; `>&2` / `1>&2` sends stdout to stderr, `2>/dev/null` drops stderr,
`> file` discards stdout. A lone `&` (background) is a parse error.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

# A command that never finishes on its own (it outlasts any timeout).
FOREVER = float("inf")


@dataclass
class VMFacts:
    name: str
    hostname: str
    os_version: str
    build_version: str
    user: str
    ip_address: str
    cpu_count: int
    memory_mb: int


@dataclass
class ShellResult:
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    # Simulated wall time the command takes (seconds); FOREVER for a command that never ends.
    seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class _Out:
    code: int = 0
    out: str = ""
    err: str = ""
    seconds: float = 0.0


def _files(f: VMFacts) -> dict[str, str]:
    home = f"/Users/{f.user}"
    return {
        "/etc/hosts": ("##\n# Host Database\n##\n127.0.0.1\tlocalhost\n"
                       "255.255.255.255\tbroadcasthost\n::1\t\tlocalhost\n"),
        "/etc/shells": "/bin/bash\n/bin/csh\n/bin/dash\n/bin/ksh\n/bin/sh\n/bin/tcsh\n/bin/zsh\n",
        "/System/Library/CoreServices/SystemVersion.plist": (
            '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
            f"\t<key>ProductBuildVersion</key>\n\t<string>{f.build_version}</string>\n"
            "\t<key>ProductName</key>\n\t<string>macOS</string>\n"
            f"\t<key>ProductVersion</key>\n\t<string>{f.os_version}</string>\n</dict>\n</plist>\n"
        ),
        f"{home}/hello.txt": f"Hello from {f.name}\n",
        f"{home}/.zshrc": 'export PATH="/opt/homebrew/bin:$PATH"\n',
    }


def _dirs(f: VMFacts) -> dict[str, list[str]]:
    home = f"/Users/{f.user}"
    return {
        "/": ["Applications", "Library", "System", "Users", "Volumes", "bin", "etc", "opt", "private",
              "sbin", "tmp", "usr", "var"],
        "/Users": ["Shared", f.user],
        home: ["Desktop", "Documents", "Downloads", "Library", "hello.txt"],
        "/etc": ["hosts", "shells"],
        "/tmp": [],
        "/Applications": ["Safari.app", "Utilities", "Xcode.app"],
    }


def _resolve(path: str, cwd: str) -> str:
    if path.startswith("~"):
        path = cwd + path[1:]
    elif not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _run_one(argv: list[str], stdin: str, f: VMFacts) -> _Out:
    home = f"/Users/{f.user}"
    name, args = argv[0], argv[1:]
    files, dirs = _files(f), _dirs(f)
    if name == "echo":
        newline = True
        if args and args[0] == "-n":
            newline, args = False, args[1:]
        return _Out(out=" ".join(args) + ("\n" if newline else ""))
    if name == "true" or name == ":":
        return _Out()
    if name == "false":
        return _Out(code=1)
    if name == "exit":
        try:
            code = int(args[0]) if args else 0
        except ValueError:
            return _Out(code=2, err=f"zsh: exit: numeric argument required: {args[0]}\n")
        return _Out(code=code % 256)
    if name == "uname":
        kernel = "Darwin"
        release = "24.1.0"
        if not args or args == ["-s"]:
            return _Out(out=kernel + "\n")
        if "-a" in args:
            return _Out(out=f"{kernel} {f.hostname} {release} Darwin Kernel Version {release}: "
                        f"Thu Oct 10 21:03:11 PDT 2024; root:xnu-11215.41.3~2/RELEASE_ARM64_VMAPPLE arm64\n")
        picks = {"-s": kernel, "-n": f.hostname, "-r": release, "-m": "arm64", "-p": "arm"}
        unknown = [a for a in args if a not in picks]
        if unknown:
            return _Out(code=1, err=f"uname: illegal option -- {unknown[0].lstrip('-')}\n"
                        "usage: uname [-amnoprsv]\n")
        return _Out(out=" ".join(picks[a] for a in args) + "\n")
    if name == "sw_vers":
        values = {"-productName": "macOS", "-productVersion": f.os_version, "-buildVersion": f.build_version}
        if args:
            if args[0] in values:
                return _Out(out=values[args[0]] + "\n")
            return _Out(code=1, err=f"sw_vers: unrecognized option '{args[0]}'\n")
        return _Out(out=f"ProductName:\t\tmacOS\nProductVersion:\t\t{f.os_version}\n"
                    f"BuildVersion:\t\t{f.build_version}\n")
    if name == "hostname":
        return _Out(out=f.hostname + "\n")
    if name == "whoami":
        return _Out(out=f.user + "\n")
    if name == "id":
        return _Out(out=f"uid=501({f.user}) gid=20(staff) groups=20(staff),80(admin)\n")
    if name == "pwd":
        return _Out(out=home + "\n")
    if name == "date":
        import time

        return _Out(out=time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()) + "\n")
    if name == "uptime":
        return _Out(out=" 10:02  up 12 mins, 1 user, load averages: 0.42 0.37 0.31\n")
    if name == "sysctl" and args[-1:] == ["hw.ncpu"]:
        return _Out(out=(f"{f.cpu_count}\n" if "-n" in args else f"hw.ncpu: {f.cpu_count}\n"))
    if name == "sysctl" and args[-1:] == ["hw.memsize"]:
        mem = f.memory_mb * 1024 * 1024
        return _Out(out=(f"{mem}\n" if "-n" in args else f"hw.memsize: {mem}\n"))
    if name == "ipconfig" and args == ["getifaddr", "en0"]:
        return _Out(out=f.ip_address + "\n")
    if name == "ls":
        paths = [a for a in args if not a.startswith("-")] or [home]
        out, err, code = [], [], 0
        for p in paths:
            full = _resolve(p, home)
            if full in dirs:
                entries = sorted(dirs[full])
                if "-a" in args or "-la" in args or "-al" in args:
                    entries = [".", ".."] + entries
                out.append("\n".join(entries) + ("\n" if entries else ""))
            elif full in files:
                out.append(p + "\n")
            else:
                err.append(f"ls: {p}: No such file or directory\n")
                code = 1
        return _Out(code=code, out="".join(out), err="".join(err))
    if name == "cat":
        if not args:
            return _Out(out=stdin)
        out, err, code = [], [], 0
        for p in args:
            full = _resolve(p, home)
            if full in files:
                out.append(files[full])
            elif full in dirs:
                err.append(f"cat: {p}: Is a directory\n")
                code = 1
            else:
                err.append(f"cat: {p}: No such file or directory\n")
                code = 1
        return _Out(code=code, out="".join(out), err="".join(err))
    if name == "wc" and args in (["-l"], []):
        lines = stdin.count("\n")
        return _Out(out=f"{lines:>8}\n")
    if name == "head":
        n = 10
        if len(args) >= 2 and args[0] == "-n" and args[1].isdigit():
            n = int(args[1])
        return _Out(out="".join(stdin.splitlines(keepends=True)[:n]))
    if name == "grep":
        if not args:
            return _Out(code=2, err="usage: grep [-v] pattern\n")
        invert = args[0] == "-v"
        pattern = args[1] if invert and len(args) > 1 else args[0]
        hits = [ln for ln in stdin.splitlines(keepends=True) if (pattern in ln) != invert]
        return _Out(code=0 if hits else 1, out="".join(hits))
    if name == "sleep":
        try:
            seconds = float(args[0]) if args else -1.0
        except ValueError:
            seconds = -1.0
        if seconds < 0:
            return _Out(code=1, err="usage: sleep seconds\n")
        return _Out(seconds=seconds)
    if name in ("yes", "tail") and (name == "yes" or "-f" in args):
        # Runs until killed: it outlasts any timeout.
        return _Out(seconds=FOREVER)
    if name in ("ping",) and "-c" not in args:
        return _Out(seconds=FOREVER)
    if name == "xcodebuild" and args == ["-version"]:
        return _Out(out="Xcode 16.1\nBuild version 16B40\n")
    return _Out(code=127, err=f"zsh: command not found: {name}\n")


@dataclass
class _Segment:
    op: str  # the operator before this command: ";", "&&", "||" or "|"
    argv: list[str]
    stdout_to_stderr: bool = False
    drop_stdout: bool = False
    drop_stderr: bool = False


def _split_pipeline(command: str) -> list[_Segment]:
    """Split into commands with their operators and redirections, honouring quotes."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|>")
    lexer.whitespace_split = True
    tokens = list(lexer)
    segments = [_Segment(";", [])]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        seg = segments[-1]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok in (";", "&&", "||", "|"):
            segments.append(_Segment(tok, []))
        elif tok == ">&" and nxt == "2":
            if seg.argv and seg.argv[-1] == "1":
                seg.argv.pop()
            seg.stdout_to_stderr = True
            i += 1
        elif tok in (">", ">>") and nxt is not None:
            if seg.argv and seg.argv[-1] == "2":
                seg.argv.pop()
                seg.drop_stderr = True
            else:
                seg.drop_stdout = True  # written to a file we do not keep
            i += 1
        elif tok in ("&", ">&", ">", ">>") or set(tok) <= set(";&|>"):
            raise ValueError(f"unsupported syntax near '{tok}'")
        else:
            seg.argv.append(tok)
        i += 1
    return segments


def run(command: str, facts: VMFacts) -> ShellResult:
    """Interpret `command`; the caller applies `seconds` (really waits) and the timeout."""
    try:
        segments = _split_pipeline(command)
    except ValueError as exc:
        return ShellResult(exit_code=2, stderr=f"zsh: parse error: {exc}\n")
    if len(segments) == 1 and not segments[0].argv:
        return ShellResult()
    stdout: list[str] = []
    stderr: list[str] = []
    seconds = 0.0
    code = 0
    pending_stdin = ""
    for i, seg in enumerate(segments):
        if not seg.argv:
            return ShellResult(exit_code=2, stdout="".join(stdout),
                               stderr="".join(stderr) + f"zsh: parse error near `{seg.op}'\n")
        if seg.op == "&&" and code != 0:
            continue
        if seg.op == "||" and code == 0:
            continue
        stdin = pending_stdin if seg.op == "|" else ""
        env = {"$?": str(code), "$HOME": f"/Users/{facts.user}", "$USER": facts.user, "$SHELL": "/bin/zsh"}
        res = _run_one([env.get(a, a) for a in seg.argv], stdin, facts)
        seconds += res.seconds
        code = res.code
        piped = i + 1 < len(segments) and segments[i + 1].op == "|"
        if seg.drop_stdout:
            pass
        elif piped:
            pending_stdin = res.out
        elif seg.stdout_to_stderr:
            stderr.append(res.out)
        else:
            stdout.append(res.out)
        if not seg.drop_stderr:
            stderr.append(res.err)
        if seg.argv[0] == "exit" or seconds == FOREVER:
            break
    return ShellResult(exit_code=code, stdout="".join(stdout), stderr="".join(stderr), seconds=seconds)
