"""Docker HEALTHCHECK for the web container: the login page must answer 200 on 127.0.0.1:8000.

The request carries a Host that ALLOWED_HOSTS accepts and X-Forwarded-Proto: https (what the TLS
proxy in front sends), so neither DisallowedHost nor the HTTPS redirect of production mode gets in
the way. Exit 0 when healthy, 1 otherwise; one line on stdout either way (Docker keeps it).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def _host() -> str:
    for entry in os.environ.get("ALLOWED_HOSTS", "").split(","):
        entry = entry.strip()
        if entry and entry != "*":
            return entry.lstrip(".")  # ".example.com" allows example.com itself
    return "localhost"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an answer to report, not to follow


def main() -> int:
    port = os.environ.get("FLEETUI_HEALTHCHECK_PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/accounts/login/",
        headers={"Host": _host(), "X-Forwarded-Proto": "https"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {exc}")
        return 1
    print(f"login page: HTTP {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
