"""The browser tests' fixtures: Chromium, a tab on the live server, signed-in tabs, a quick poller
(one copy in tests/support/browser.py, shared with tests/access/test_access_browser.py)."""

from support.browser import browser_page, chromium, logged_in_page, login_as, quick_poller

__all__ = ["browser_page", "chromium", "logged_in_page", "login_as", "quick_poller"]
