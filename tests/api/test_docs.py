"""The API's own documentation pages render in a real browser that can reach nothing but the API itself.

A server inside the City's network (or any machine without internet access) must still show /docs: the pages
may not load Swagger UI or ReDoc from a CDN.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.browser import CHROMIUM, Chromium

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Every host but the API's loopback address resolves to nothing: a page that needs a CDN stays blank.
OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",)
RENDER_SECONDS = 120.0
_SWAGGER_OPERATIONS = "document.querySelectorAll('#swagger-ui .opblock').length"
_REDOC_OPERATIONS = "document.querySelectorAll('[data-section-id^=\"operation/\"]').length"


def _operation_count(url: str) -> int:
    paths = httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]
    return sum(len(methods) for methods in paths.values())


@pytest.fixture
def offline_browser(tmp_path: Path) -> Chromium:
    if not CHROMIUM.is_file():  # CI installs it (.ci/run): a missing browser is a failure, not a skip
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`")
    return Chromium(tmp_path / "chromium-profile", extra_flags=OFFLINE)


@pytest.mark.parametrize(
    ("page", "operations"), [("/docs", _SWAGGER_OPERATIONS), ("/redoc", _REDOC_OPERATIONS)], ids=["swagger", "redoc"]
)
def test_the_documentation_renders_every_operation_without_internet_access(
    live_server: tuple[str, subprocess.Popen[str]], offline_browser: Chromium, page: str, operations: str
) -> None:
    url, _ = live_server
    expected = _operation_count(url)
    assert expected >= 5  # health, model, predict, batch...: a broken spec would make the check empty
    with offline_browser as browser:
        browser.open(f"{url}{page}")
        assert browser.wait_for(f"{operations} >= {expected} && {operations}", RENDER_SECONDS) == expected
        requested = browser.requested_urls()
    assert f"{url}{page}" in requested
    # What the scripts inline (data: and blob: URLs) is no request to anyone.
    elsewhere = [address for address in requested if not address.startswith((f"{url}/", "data:", "blob:"))]
    assert elsewhere == []
