"""Debian's headless Chromium, driven through its chromium-driver (Selenium), for the
console's tests; screenshots are kept under build/screenshots as the run's artefacts."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
# A phone as pages see it: 390 x 844 CSS pixels at 3.3 device pixels each, so its
# screenshots hold what its screen shows (1,287 pixels across) and pass the same checks.
PHONE = {"width": 390, "height": 844, "pixelRatio": 3.3}


@contextmanager
def chromium(width: int = 1280, height: int = 900, *, phone: bool = False,
             ) -> Iterator[WebDriver]:
    """A fresh headless browser (no cookies) with a window of `width` x `height`, or, with
    `phone`, emulating a phone's screen (`PHONE`, touch and a mobile viewport)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, "chromium and chromium-driver are needed: run scripts/bootstrap"
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(argument)
    if phone:
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield browser
    finally:
        browser.quit()


def screenshot(browser: WebDriver, name: str, *, retry: bool = False) -> Path | None:
    """The whole page as `name`.png, checked to be one a person could read: at least
    1280 x 800 and at least 50 colours. With `retry`, a page caught reloading gives None
    (ask again) instead of failing."""
    try:
        return _screenshot(browser, name)
    except (AssertionError, WebDriverException):
        if retry:
            return None
        raise


def _screenshot(browser: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    width, height, frame, ratio = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight,"
        " window.outerHeight - window.innerHeight, window.devicePixelRatio]")
    if abs(ratio - PHONE["pixelRatio"]) < 0.01:  # a phone's: the whole page, at its width
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))
    else:
        # the window's size counts the browser's own frame; the page gets the rest
        browser.set_window_size(max(1280, width), max(800, height) + frame)
        assert browser.save_screenshot(str(path))
    with Image.open(path) as img:
        assert img.width >= 1280 and img.height >= 800, (name, img.size)
        rgb = np.asarray(img.convert("RGB")).astype(np.uint32)
    colours = len(np.unique(rgb @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)))
    assert colours >= 50, f"{name}: only {colours} colours"
    return path
