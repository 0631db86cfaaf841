"""The QA tests' browser fixtures are the end-to-end suite's (one Chromium per session)."""

from tests.e2e.conftest import browser, chromium_path, new_context, new_page, screenshots  # noqa: F401
