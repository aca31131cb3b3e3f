"""Headless Chromium for the browser tests: Debian's chromium driven by selenium.

Nothing is downloaded: the driver is /usr/bin/chromedriver and the browser
/usr/bin/chromium (``apt-get install chromium chromium-driver``), both passed
explicitly so that selenium-manager never runs, and Chromium's background
networking (updates, sync, safe browsing...) is off. Every ``Browser`` has its
own fresh profile directory, so two of them hold separate cookies like two
people on two machines.

Each chromedriver runs in its own process group (with the Chromium it starts),
which ``Browser.quit()`` kills after asking politely, so a wedged browser never
outlives its test.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness import PHP_DEMO

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:          # unavailable() says so, and the browser tests skip
    webdriver = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SOCKET_IO_CLIENT = PHP_DEMO / "public" / "vendor" / "socket.io.min.js"

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",                    # root in a container: no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",         # small /dev/shm in containers
    "--disable-background-networking",  # the machine has no outside network; ask for nothing
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-proxy-server",
    "--password-store=basic",
    "--window-size=1100,1400",
)

COMMAND_TIMEOUT = 20.0  # seconds one WebDriver command may take (selenium's default is 120)


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: apt-get install {package}"
    if webdriver is None:
        return "selenium is not installed: .venv/bin/pip install selenium"
    return None


def ensure_socket_io_client(timeout: float = 180.0) -> str | None:
    """Makes sure the demo page can load socket.io.min.js (runs php-demo/setup.sh).

    Returns None when the file is there, or why it cannot be (npm absent).
    A failing setup.sh raises, with its output.
    """
    if SOCKET_IO_CLIENT.is_file():
        return None
    if shutil.which("npm") is None:
        return f"{SOCKET_IO_CLIENT} is missing and npm is not installed to run php-demo/setup.sh"
    done = subprocess.run([str(PHP_DEMO / "setup.sh")], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not SOCKET_IO_CLIENT.is_file():
        raise RuntimeError(f"php-demo/setup.sh failed ({done.returncode}):\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return None


class Browser:
    """One headless Chromium with its own profile (its own cookie jar)."""

    def __init__(self, name: str, workdir: Path):
        self.name = name
        self.profile = Path(tempfile.mkdtemp(prefix=f"chromium-{name}-", dir=workdir))
        self.log_path = workdir / f"chromedriver-{name}.log"
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(str(CHROMEDRIVER), log_output=str(self.log_path),
                          popen_kw={"start_new_session": True})
        self.service = service
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.command_executor.client_config.timeout = COMMAND_TIMEOUT
        self.driver.set_page_load_timeout(COMMAND_TIMEOUT)
        self.driver.set_script_timeout(COMMAND_TIMEOUT)

    # -- waiting ---------------------------------------------------------------

    def wait(self, condition, timeout: float = 10.0, what: str = ""):
        """WebDriverWait polling every 20 ms; the message says what did not happen."""
        message = f"{self.name}: timed out after {timeout:g}s waiting for {what or condition}"
        return WebDriverWait(self.driver, timeout, poll_frequency=0.02).until(condition, message)

    def element(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def count(self, css: str) -> int:
        return len(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str | None:
        """The element's visible text (None if absent), read by one script in the
        page: a navigation between finding the element and reading it cannot
        break the read ("Node ... does not belong to the document")."""
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]);"
            " return e === null ? null : e.innerText;", css)

    def wait_text(self, css: str, expected: str, timeout: float = 10.0) -> str:
        """Waits until the element's visible text contains ``expected``; returns the text."""

        def contains(driver):
            try:
                text = self.text(css)
            except WebDriverException:   # the page is being replaced; poll again
                return False
            return text if text is not None and expected in text else False

        try:
            return self.wait(contains, timeout, f"{css} to contain {expected!r}")
        except Exception as exc:
            try:
                now = repr(self.text(css))
            except Exception:  # only for the message
                now = "(no such element)"
            raise AssertionError(f"{self.name}: {css} never contained {expected!r}; "
                                 f"it shows {now}") from exc

    # -- acting ----------------------------------------------------------------

    def open(self, url: str) -> None:
        self.driver.get(url)

    def fill(self, css: str, value: str) -> None:
        field = self.element(css)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        self.element(css).click()

    def select(self, css: str, value: str) -> None:
        Select(self.element(css)).select_by_value(value)

    # -- evidence --------------------------------------------------------------

    def save_windows(self, folder: Path, label: str) -> list[Path]:
        """A full-page PNG, the HTML and the console log of every window of this browser."""
        folder.mkdir(parents=True, exist_ok=True)
        saved: list[Path] = []
        try:
            handles = self.driver.window_handles
            current = self.driver.current_window_handle
        except Exception:  # the browser is gone: nothing to save
            return saved
        for number, handle in enumerate(handles, 1):
            stem = folder / f"{label}-{self.name}-window{number}"
            try:
                self.driver.switch_to.window(handle)
                png = stem.with_suffix(".png")
                png.write_bytes(self._full_page_png())
                saved.append(png)
                html = stem.with_suffix(".html")
                html.write_text(self.driver.page_source)
                saved.append(html)
            except Exception as exc:
                stem.with_suffix(".error.txt").write_text(repr(exc))
        try:
            self.driver.switch_to.window(current)
            console = folder / f"{label}-{self.name}-console.json"
            console.write_text(json.dumps(self.driver.get_log("browser"), indent=1))
            saved.append(console)
        except Exception:
            pass
        return saved

    def _full_page_png(self) -> bytes:
        try:
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            return base64.b64decode(shot["data"])
        except Exception:  # no CDP: the visible viewport only
            return self.driver.get_screenshot_as_png()

    # -- ending ----------------------------------------------------------------

    def quit(self) -> None:
        """Ends the session, then kills chromedriver's process group (Chromium with it)."""
        process = getattr(self.service, "process", None)
        try:
            self.driver.quit()
        except Exception:  # a wedged browser: its process group is killed below
            pass
        if process is not None:
            deadline = time.monotonic() + 5
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


class Browsers:
    """Browsers of one test: started on demand, all quit by ``quit_all()``."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.started: list[Browser] = []

    def new(self, name: str) -> Browser:
        browser = Browser(name, self.workdir)
        self.started.append(browser)
        return browser

    def save_all(self, folder: Path, label: str) -> list[Path]:
        saved: list[Path] = []
        for browser in self.started:
            saved += browser.save_windows(folder, label)
        return saved

    def quit_all(self) -> None:
        while self.started:
            self.started.pop().quit()
