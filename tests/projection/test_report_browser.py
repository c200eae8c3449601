"""The projection report opened in a real browser: headless Chromium renders every chart, logs no
console error and fetches nothing from the network.

Chromium comes from Debian's packages (``scripts/install_browser.sh``, which ``.ci/run`` calls). The
test drives it over the DevTools protocol on a pipe (``--remote-debugging-pipe``: NUL-terminated
JSON on file descriptors 3 and 4), so it needs neither a driver nor a Python package. Under CI
(``AMBULANCE_CI=1``) a missing Chromium fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.projection.test_report import report  # noqa: F401 - the rendered report fixture

UNDER_CI = os.environ.get("AMBULANCE_CI") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not UNDER_CI,
    reason="no chromium; install it with scripts/install_browser.sh (CI does)",
)


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds() -> None:  # the browser reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        flags = ["--headless", "--disable-gpu", "--remote-debugging-pipe", f"--user-data-dir={profile}"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to run its sandbox as root (CI)
        self.process = subprocess.Popen(
            [binary, *flags, "--no-first-run", "--no-default-browser-check", "about:blank"],
            preexec_fn=child_fds,  # noqa: PLW1509 - only dup2, before exec
            pass_fds=(3, 4),  # kept open: the other descriptors are closed after preexec_fn
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout=30.0):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.fixture(scope="module")
def opened(report, tmp_path_factory):  # noqa: F811 - the imported fixture
    """The report loaded in headless Chromium: what the page holds and what the browser logged."""
    if CHROMIUM is None:
        pytest.fail("chromium is missing under CI: scripts/install_browser.sh should have installed it")
    html, projection, charts, out = report
    browser = DevTools(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": (out / "report.html").as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        probe = """JSON.stringify({
            images: Array.from(document.images).map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0,
                width: i.naturalWidth})),
            title: document.title,
            h2: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
            banner: (document.querySelector('.banner') || {}).textContent || '',
            height: document.body.scrollHeight
        })"""
        result = browser.send(
            "Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session
        )
        page = json.loads(result["result"]["value"])
    finally:
        browser.close()
    return page, browser.events, charts


def test_every_chart_renders(opened):
    page, _, charts = opened
    # The two-scenario report embeds: scenarios, both fans, age bands, and the extra section's chart.
    assert len(page["images"]) == 5
    broken = [image["alt"] for image in page["images"] if not image["ok"]]
    assert not broken, f"charts that did not render: {broken}"
    assert all(image["width"] >= 500 for image in page["images"])
    assert page["title"].startswith("Ambulance demand projection 2024-2030")
    assert "Synthetic history" in page["banner"]
    assert {"trust", "Workforce", "Assumptions, in plain words"} <= set(page["h2"])
    assert page["height"] > 3000  # laid out, not a blank page


def test_no_console_errors_and_nothing_fetched(opened):
    _, events, _ = opened
    errors = [
        e["params"]
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]
    assert not errors, errors
    requests = [
        e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests, "the browser reported no request at all: the page was not loaded"
    assert all(url.split(":", 1)[0] in ("file", "data") for url in requests), requests
