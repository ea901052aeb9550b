"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: no
port, no network): open a page at a given viewport, evaluate JavaScript, take screenshots.

    with Chromium(profile_dir) as browser:
        page = browser.open(path.as_uri(), width=1400, height=900)
        boxes = page.evaluate("...")
        page.screenshot(out_png)

The browser runs in its own session; leaving the block closes it (Browser.close), and kills its
process group if it has not exited in time, so no Chromium outlives a test.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class ChromiumError(RuntimeError):
    pass


class Chromium:
    def __init__(self, binary: str, profile_dir: Path, timeout: float = 30.0) -> None:
        self.binary, self.profile_dir, self.timeout = binary, profile_dir, timeout
        self.proc: subprocess.Popen | None = None
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []  # received while waiting for a reply

    def __enter__(self) -> Chromium:
        to_browser = os.pipe()
        from_browser = os.pipe()
        # the browser reads commands on fd 3 and writes replies on fd 4; our copies sit above
        # 10 so the child's dup2 cannot clobber one with the other
        theirs = [
            fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser[0], from_browser[1])
        ]
        for fd in (to_browser[0], from_browser[1]):
            os.close(fd)

        def child_fds() -> None:
            os.dup2(theirs[0], 3)
            os.dup2(theirs[1], 4)

        self.log = open(self.profile_dir.with_suffix(".log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            preexec_fn=child_fds,
            pass_fds=(3, 4),
            start_new_session=True,
        )
        for fd in theirs:
            os.close(fd)
        self._w, self._r = to_browser[1], from_browser[0]
        try:
            self.call("Browser.getVersion")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                with contextlib.suppress(ChromiumError, OSError, TimeoutError):
                    self.call("Browser.close", timeout=10)
                proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # the renderer and helper processes share the browser's process group
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    continue
            for fd in (self._w, self._r):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self.log.close()

    # -- the protocol: JSON messages separated by NUL bytes --------------------------------

    def _send(self, method: str, params: dict | None, session: str | None) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        return self._next_id

    def _recv(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from Chromium in time")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise ChromiumError("Chromium closed its DevTools pipe")
                self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=None
    ) -> dict:
        """Send a command and return its result; events received meanwhile are kept."""
        mid = self._send(method, params, session)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._recv(deadline)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise ChromiumError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, session: str, timeout=None) -> dict:
        """The first event `method` of `session` (already received or to come)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._recv(deadline))

    def open(self, url: str, width: int, height: int) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        page.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.call("Page.enable")
        page.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", session)
        # images are data URIs, decoded by the load event; fonts and layout by the next frame
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        return page


class Page:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.call(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        r = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in r:
            raise ChromiumError(f"JavaScript: {r['exceptionDetails'].get('text')}: {r}")
        return r["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            w, h = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1},
            }
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path
