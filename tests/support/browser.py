"""Headless Chromium against Django's live server, for the browser tests (tests/browser/*.py and
tests/access/test_access_browser.py; their conftests make these fixtures visible).

Fixtures:
- chromium: a Chromium launched for the test (executable_path=/usr/bin/chromium, CHROMIUM_ARGS), closed after.
- browser_page: a tab on the live server (`page.goto("/vms/")` works: the context's base_url), 1400x900,
  15 s default timeout, console errors collected in `page.console_errors`. Test users' passwords hash
  with MD5 (PBKDF2's slowness is for real users).
- login_as: `login_as(user)` -> browser_page signed in as that user (a session from force_login set as
  its cookie: no password, no form).
- logged_in_page: `logged_in_page(role, username)` -> browser_page signed in as a new user of that role.
- quick_poller: `start(node_id)` polls that node every 0.3 s in a thread until the test ends (beat's
  job, faster).

Helpers: `sign_in(page, username, password)` through the login form; `shot(page, name)` saves a
screenshot when FLEETUI_SHOTS names a folder (for a human to look at, never into the repo).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client

from fleetui.nodes.services import node_poll

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 15_000
SHOTS = os.environ.get("FLEETUI_SHOTS", "")


def shot(page: Any, name: str, prefix: str = "browser") -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{prefix}-{name}.png"), full_page=True)


def sign_in(page: Any, username: str, password: str, submit: str = "button[type=submit]") -> None:
    """Sign in through the login form (the page's context has the live server as base_url)."""
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click(submit)


@pytest.fixture()
def chromium(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django then refuses ORM calls here,
    # though the test's own ORM calls run between browser steps, never inside that loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def browser_page(chromium: Any, live_server: Any) -> Iterator[Any]:
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture()
def login_as(browser_page: Any, live_server: Any) -> Callable[[User], Any]:
    def login(user: User) -> Any:
        session = Client()
        session.force_login(user)
        browser_page.context.add_cookies([{"name": "sessionid", "value": session.cookies["sessionid"].value,
                                           "url": live_server.url}])
        return browser_page

    return login


@pytest.fixture()
def logged_in_page(login_as: Callable[[User], Any]) -> Callable[[str, str], Any]:
    def login(role: str, username: str) -> Any:
        user = User.objects.create_user(username)
        user.groups.add(Group.objects.get_or_create(name=role)[0])  # a transactional test may have flushed it
        return login_as(user)

    return login


@pytest.fixture()
def quick_poller() -> Iterator[Callable[[int], None]]:
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def loop(node_id: int) -> None:
        try:
            while not stop.wait(0.3):
                node_poll(node_id=node_id, scheduled=True)
        finally:
            connection.close()

    def start(node_id: int) -> None:
        thread = threading.Thread(target=loop, args=(node_id,), daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
