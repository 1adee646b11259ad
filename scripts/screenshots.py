"""Screenshots of each workspace on a fresh demo library, for README (docs/*.png).

Run: ``.venv/bin/python scripts/screenshots.py`` (needs Debian's chromium,
installed by ``make test``). Builds a throwaway demo home, serves the app on a
free localhost port, logs in as each role with Playwright and saves one page
per workspace. Nothing outside the temp folder and docs/ is touched.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipkit import demo  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = {"manager": ("calls", "manager.png", 1500), "trainer": ("library", "trainer.png", 1000),
         "compliance": ("dashboard", "compliance.png", 1300)}


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "demo"
        passwords = demo.build(home, out=io.StringIO())["users"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, CLIPKIT_HOME=str(home))
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app_server.py", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(base + "/_stcore/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.25)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                for role, (page_path, name, height) in SHOTS.items():
                    # Streamlit scrolls inside its main block: the viewport is the picture
                    page = browser.new_context(viewport={"width": 1400, "height": height}).new_page()
                    page.goto(f"{base}/{page_path}", timeout=60_000)
                    page.get_by_role("textbox", name="User name").fill(role)
                    page.get_by_role("textbox", name="Password", exact=True).fill(passwords[role])
                    page.get_by_role("button", name="Log in").click()
                    page.wait_for_timeout(500)
                    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=60_000)
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(ROOT / "docs" / name), full_page=True)
                    print(f"docs/{name}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
