"""What a strict Content-Security-Policy would block in a rendered page: inline scripts, inline
event handlers, javascript: URLs, inline styles. Parsed with the standard library's HTML parser."""

from __future__ import annotations

from html.parser import HTMLParser


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False
        self._script_has_src = False
        self._script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): (value or "") for name, value in attrs}
        for name, value in names.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> inline event handler")
            if name in ("href", "src", "action", "formaction", "hx-get", "hx-post") and \
                    value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value[:40]!r}> javascript: URL")
            if name == "style":
                self.problems.append(f"<{tag} style=...> inline style")
            if name.startswith(("hx-on", "data-hx-on")):
                self.problems.append(f"<{tag} {name}> htmx inline handler (needs eval)")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            self._in_script = True
            self._script_has_src = bool(names.get("src"))
            self._script_text = []
            kind = names.get("type", "").lower()
            if not self._script_has_src and kind not in ("application/json", "application/ld+json"):
                self.problems.append("<script> without src (inline script)")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            if self._script_has_src and "".join(self._script_text).strip():
                self.problems.append("<script src> with inline content")
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self._script_text.append(data)


def csp_problems(html: str) -> list[str]:
    scanner = _Scanner()
    scanner.feed(html)
    scanner.close()
    return scanner.problems
