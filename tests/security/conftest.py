"""The e2e tests' browser fixtures, for the security tests that prove a finding in Chromium."""

from tests.e2e.conftest import browser, chromium_path, new_context, new_page  # noqa: F401
