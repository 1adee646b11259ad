"""End to end in a real browser: manager cuts, anonymizes and approves; a trainer plays it.

Starts ``streamlit run app_server.py`` on a free port with a fresh data
home (one generated call, one account per role) and drives Debian's
Chromium (``/usr/bin/chromium``, installed by ``scripts/install-browser.sh``)
with Playwright. No browser is ever downloaded.

The trainer's browser context records every response it receives. None may
carry the raw recording (the stored file, the clip's range or the whole call
as the app would serve them to a manager), and the audio the trainer plays
must be byte-for-byte the clip's current rendering. Screenshots of each
workspace are written to ``docs/``.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app_pages import _ui
from clipkit import audio as clipaudio
from clipkit import auditlog, library, users

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PASSWORDS = {role: f"e2e-{role}-password" for role in users.ROLES}
# screenshots refresh docs/ only when asked (CLIPKIT_SCREENSHOTS=1), so a test run leaves the tree clean
DOCS = ROOT / "docs" if os.environ.get("CLIPKIT_SCREENSHOTS") else None
START_S, END_S = 2.35, 7.8
REQUESTED: list[str] = []  # every URL any page asked for: a privacy tool makes no outside requests


@pytest.fixture(autouse=True)
def _fresh_requests():
    """Each test has its own server, so each starts its own record of requests."""
    REQUESTED.clear()
    yield  # sub-second on purpose: st.audio would round these


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_health(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"streamlit did not become healthy within {timeout:.0f} s")


@pytest.fixture
def server(home, db, recording, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing; run scripts/install-browser.sh")
    pytest.importorskip("playwright.sync_api")
    from clipkit import coaching

    for role in users.ROLES:
        if role == "agent":
            coaching.add_agent_account(db, home, role, agent="E-0007", password=PASSWORDS[role])
        else:
            users.add_user(db, role, role=role, password=PASSWORDS[role])
    port = _free_port()
    env = dict(os.environ, CLIPKIT_HOME=str(home.root), PYTHONUNBUFFERED="1")
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app_server.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_health(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        out = (tmp_path / "streamlit.log").read_text(errors="replace")
        assert "Traceback" not in out, out[-4000:]


def stored(body: bytes) -> bytes:
    """What a served payload holds without its nonce chunk (bytes that carry none are returned as they are)."""
    try:
        return clipaudio.without_nonce(body)
    except ValueError:
        return body


# ---------------------------------------------------------------- page helpers


def settle(page, timeout: float = 60_000) -> None:
    """Wait until the script run started by the last interaction has finished."""
    page.wait_for_timeout(250)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout)


def login(page, base: str, role: str) -> None:
    page.goto(base + "/", timeout=60_000)
    page.get_by_role("textbox", name="User name").fill(role)
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORDS[role])
    page.get_by_role("button", name="Log in").click()
    settle(page)


def start_as(browser, base: str, role: str, *, height: int, on_response=None):
    """A fresh browser context (nothing shared with other roles) logged in as ``role``; returns ``(ctx, page)``.

    ``on_response`` is attached before the first request, so it sees every response of the context.
    """
    ctx = browser.new_context(viewport={"width": 1400, "height": height})
    ctx.on("request", lambda r: REQUESTED.append(r.url))
    if on_response is not None:
        ctx.on("response", on_response)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    login(page, base, role)
    return ctx, page


def logout(page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)


def set_number(page, label: str, value: float) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(f"{value:.2f}")
    box.press("Enter")
    settle(page)


def click(page, name: str, timeout: float = 60_000) -> None:
    # the button may belong to a page still loading (settle can return before a slow rerun starts):
    # wait for it as long as for the run it starts, not Playwright's 30 s default
    page.get_by_role("button", name=name, exact=True).click(timeout=timeout)
    settle(page, timeout)


def snap(page, path: Path) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main block, so grow the viewport to fit."""
    size = page.viewport_size
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]');"
        " if (m) { m.scrollTo(0, 0); } return Math.max(m ? m.scrollHeight : 0, document.body.scrollHeight); }")
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 40, size["height"]), 4000)})
    page.wait_for_timeout(400)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def no_exception(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0, page.locator("[data-testid=stException]").first.inner_text()


# ---------------------------------------------------------------- the test


def test_manager_cuts_and_approves_then_trainer_hears_only_the_rendering(server, home, db, recording, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = DOCS or tmp_path
    shots.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # ---------------------------------------------------- manager
            ctx, page = start_as(browser, server, "manager", height=1100)
            page.get_by_role("heading", name="Calls & cutting").wait_for()
            # a range dragged across the waveform becomes the range to cut, to the hundredth of a second
            canvas = page.locator(".ckw canvas").first
            canvas.wait_for()
            box = canvas.bounding_box()
            duration = recording["duration_s"]
            x_of = lambda t: box["x"] + box["width"] * t / duration  # noqa: E731 - the component's own mapping
            page.mouse.move(x_of(3.0), box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(x_of(5.0), box["y"] + box["height"] / 2, steps=8)
            page.mouse.move(x_of(7.5), box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            # the component's state reruns the page, which reruns once more with the new range: wait for it
            page.wait_for_function(
                "() => { const b = [...document.querySelectorAll('input[type=number]')]"
                ".find(e => e.getAttribute('aria-label') === 'Start (s)'); return b && b.value !== '0.00'; }",
                timeout=30_000)
            settle(page)
            got_start = float(page.get_by_role("spinbutton", name="Start (s)", exact=True).input_value())
            got_end = float(page.get_by_role("spinbutton", name="End (s)", exact=True).input_value())
            px = duration / box["width"]  # one pixel of the waveform, in seconds
            assert abs(got_start - 3.0) <= 2 * px + 0.01 and abs(got_end - 7.5) <= 2 * px + 0.01, (got_start, got_end)
            # ... and is what "Cut clip" cuts
            page.get_by_role("textbox", name="Title").fill("Cut on the waveform")
            click(page, "Cut clip")
            no_exception(page)
            dragged = int(re.search(r"Created clip (\d+)", page.get_by_text(
                re.compile(r"Created clip \d+")).inner_text()).group(1))
            assert (library.get_clip(db, dragged)["start_s"], library.get_clip(db, dragged)["end_s"]) == (
                got_start, got_end)
            set_number(page, "Start (s)", START_S)
            set_number(page, "End (s)", END_S)
            click(page, "Preview range")
            page.locator("[data-testid=stAudio]").first.wait_for()
            # a click on the waveform seeks the player (its audio starts at the range's start)
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()
            page.mouse.click(x_of(START_S + 1.0), box["y"] + box["height"] / 2)
            page.wait_for_timeout(300)
            at = page.evaluate("() => document.querySelector('audio').currentTime")
            assert abs(at - 1.0) <= 2 * px + 0.05, at
            page.get_by_role("textbox", name="Title").fill("Caller asks about roaming")
            page.get_by_role("textbox", name="Tags (comma-separated)").fill("billing, e2e")
            click(page, "Cut clip")
            no_exception(page)
            created = page.get_by_text(re.compile(r"Created clip \d+")).inner_text()
            cid = int(re.search(r"Created clip (\d+)", created).group(1))
            clip = library.get_clip(db, cid)
            assert (clip["start_s"], clip["end_s"]) == (START_S, END_S)
            snap(page, shots / "manager.png")

            page.get_by_role("link", name=f"Open clip {cid}").click()
            settle(page)
            page.get_by_role("heading", name=re.compile(rf"#{cid} ·")).wait_for()
            # a redaction span dragged on the clip's waveform, in call time
            wave = page.locator(".ckw canvas").first
            wave.wait_for()
            wave.scroll_into_view_if_needed()
            wb = wave.bounding_box()
            pad = min(2.0, (END_S - START_S) / 4)
            v0, v1 = max(0.0, START_S - pad), min(recording["duration_s"], END_S + pad)
            xw = lambda t: wb["x"] + wb["width"] * (t - v0) / (v1 - v0)  # noqa: E731
            page.mouse.move(xw(3.0), wb["y"] + wb["height"] / 2)
            page.mouse.down()
            page.mouse.move(xw(3.5), wb["y"] + wb["height"] / 2, steps=6)
            page.mouse.move(xw(4.0), wb["y"] + wb["height"] / 2, steps=6)
            page.mouse.up()
            start_box = page.get_by_role("spinbutton", name="From (s in call)", exact=True)
            before = f"{START_S:.2f}"
            deadline = time.time() + 30
            while start_box.input_value() == before and time.time() < deadline:
                page.wait_for_timeout(200)
            settle(page)
            page.get_by_label("Mode").click()
            page.get_by_role("option", name="silence").click()
            settle(page)
            click(page, "Add span")
            no_exception(page)
            (span,) = library.get_clip(db, cid)["redactions"]
            wpx = (v1 - v0) / wb["width"]
            assert abs(span[0] - (3.0 - START_S)) <= 2 * wpx + 0.01 and abs(span[1] - (4.0 - START_S)) <= 2 * wpx + 0.01
            assert span[2] == "silence", span
            click(page, "Anonymize", timeout=240_000)  # the first render may compile the DSP kernels
            no_exception(page)
            page.get_by_text("Current rendering:").wait_for(timeout=60_000)
            click(page, "Listen A/B")
            assert page.locator("[data-testid=stAudio]").count() == 2
            # one player at a time; the switch carries the position over
            players = page.locator(".st-key-ab_players audio")
            page.wait_for_function("() => document.querySelectorAll('.st-key-ab_players audio').length === 2")
            page.get_by_role("button", name="Switch to B (anonymized)").wait_for()
            assert players.nth(0).is_visible() and not players.nth(1).is_visible()
            players.nth(0).evaluate("a => { a.currentTime = 1.5; }")
            page.get_by_role("button", name="Switch to B (anonymized)").click()
            page.get_by_role("button", name="Switch to A (original)").wait_for()
            assert players.nth(1).is_visible() and not players.nth(0).is_visible()
            assert abs(players.nth(1).evaluate("a => a.currentTime") - 1.5) < 0.05
            click(page, "Approve for training")
            page.get_by_text(re.compile(r"^Approved by manager on")).wait_for()
            assert library.get_clip(db, cid)["status"] == "approved"
            # the span is silent in the rendering the trainer will hear
            from clipkit import rendering as _rendering

            done = _rendering.current_rendering(db, library.get_clip(db, cid))
            y, sr = sf.read(str(home.root / done["path"]), always_2d=True)
            inside = y[int((span[0] + 0.02) * sr):int((span[1] - 0.02) * sr)]
            assert inside.size and np.max(np.abs(inside)) < 1e-3, np.max(np.abs(inside))
            assert np.max(np.abs(y)) > 0.05  # and the rest is not
            logout(page)
            ctx.close()

            # ---------------------------------------------------- trainer, in a fresh context
            received: list[tuple[str, bytes]] = []

            def keep(response):
                try:
                    received.append((response.url, response.body()))
                except Exception:  # redirects and aborted media requests have no body
                    received.append((response.url, b""))

            ctx, page = start_as(browser, server, "trainer", height=1000, on_response=keep)
            page.get_by_role("heading", name="Training library").wait_for()
            for other in ("manager", "compliance"):
                for spec in _ui.PAGES[other]:
                    assert page.get_by_role("link", name=spec.title).count() == 0, spec.title
            page.get_by_role("button", name="Play", exact=True).click()
            settle(page)
            no_exception(page)
            audio = page.locator("[data-testid=stAudio] audio, audio[data-testid=stAudio]").first
            audio.wait_for(state="attached")
            src = audio.get_attribute("src")
            assert src and "/media/" in src
            played = ctx.request.get(src if src.startswith("http") else server + src).body()
            page.evaluate("document.querySelector('audio') && document.querySelector('audio').play().catch(() => {})")
            page.wait_for_timeout(500)
            snap(page, shots / "trainer.png")

            ctx.close()

            # a trainer who logs in at a manager page's address gets the library, not the page
            ctx = browser.new_context(viewport={"width": 1200, "height": 900})
            page = ctx.new_page()
            for path in ("calls",):
                page.goto(f"{server}/{path}")
                page.get_by_role("textbox", name="User name").fill("trainer")
                page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORDS["trainer"])
                page.get_by_role("button", name="Log in").click()
                settle(page)
                page.get_by_role("heading", name="Training library").wait_for()
                assert page.get_by_role("heading", name="Calls & cutting").count() == 0
                assert page.get_by_role("heading", name="Compliance dashboard").count() == 0
            ctx.close()

            # ---------------------------------------------------- compliance
            ctx, page = start_as(browser, server, "compliance", height=1000)
            page.get_by_role("heading", name="Compliance dashboard").wait_for()
            page.locator("[data-testid=stVegaLiteChart], [data-testid=stArrowVegaLiteChart]").first.wait_for()
            no_exception(page)
            snap(page, shots / "compliance.png")
            page.get_by_role("link", name="Log, exports & recalls").click()
            settle(page)
            click(page, "Verify chain")
            page.get_by_text(re.compile(r"Intact: all \d+ entries")).wait_for()
            # a recall: the clip went out in an export and is withdrawn; the recipient confirms deletion
            from clipkit import export as _export
            from clipkit import withdrawal as _withdrawal

            sent = _export.export_clips(db, home, [cid], to=tmp_path / "sent", actor="trainer-cli", recipient="Vendor")
            _withdrawal.withdraw_clips(db, [cid], actor="compliance", reason="manual", home=home)
            page.reload()
            settle(page)
            page.get_by_text(re.compile(r"ask the recipients to delete")).wait_for()
            page.get_by_role("textbox", name="How they confirmed (optional)").fill("e-mail from Vendor")
            click(page, "Mark done")
            page.get_by_text(re.compile(rf"Recall of {sent['export_id']} marked done")).wait_for()
            assert page.get_by_text(re.compile(r"ask the recipients to delete")).count() == 0
            no_exception(page)
            ctx.close()
        finally:
            browser.close()

    # ---------------------------------------------------- what the trainer received
    from clipkit import rendering

    current = rendering.current_rendering(db, library.get_clip(db, cid))
    # the trainer hears the centred mix (both voices in both ears) of exactly the stored rendering
    centred = clipaudio.centre_mix((home.root / current["path"]).read_bytes())
    assert stored(played) == centred
    media = [(u, b) for u, b in received if "/media/" in u]
    assert media, [u for u, _ in received]
    src_path = library.recording_path(home, recording)
    raw_forms = {
        "stored file": src_path.read_bytes(),
        "clip range as served to a manager": clipaudio.segment_wav(src_path, start_s=START_S, end_s=END_S),
        "whole call as served to a manager": clipaudio.segment_wav(src_path, start_s=0.0,
                                                                  end_s=recording["duration_s"]),
    }
    raw_hashes = {hashlib.sha256(b).hexdigest(): name for name, b in raw_forms.items()}
    for url, body in received + [(src, played)]:
        h = hashlib.sha256(stored(body)).hexdigest()
        assert h not in raw_hashes, f"the trainer received the raw audio ({raw_hashes[h]}) from {url}"
        for name, raw in raw_forms.items():
            assert len(body) < 1000 or raw[44:4044] not in body, f"{url} carries raw PCM ({name})"
    assert any(stored(b) == centred for _, b in media if b)
    # the play was logged as the trainer's, and nothing raw was played by the trainer
    plays = [e for e in auditlog.entries(db, actor="trainer")[0] if e["kind"].startswith("play")]
    assert [(e["kind"], e["data"]["clip"], e["data"]["sha256"]) for e in plays] == [("play", cid, current["sha256"])]
    for name in ("manager.png", "trainer.png", "compliance.png"):
        assert (shots / name).stat().st_size > 10_000
    outside = sorted({u for u in REQUESTED if not u.startswith((server, "data:", "blob:"))})
    assert REQUESTED and not outside, outside


def test_a_review_is_shared_and_the_agent_hears_it_and_acknowledges(server, home, db, recording):
    from playwright.sync_api import sync_playwright

    from clipkit import coaching

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx, page = start_as(browser, server, "manager", height=1200)
            page.get_by_role("link", name="Coaching").click()
            settle(page)
            click(page, "Draw this month's reviews")
            no_exception(page)
            page.get_by_text(re.compile(r"Drew 1 review")).wait_for()
            # inside a form: fill both, then submit once (Enter in a form field would submit it early)
            page.get_by_role("spinbutton", name="At (s in the call)", exact=True).fill("4.50")
            page.get_by_role("textbox", name="Comment").fill("Calm and clear opening")
            click(page, "Add comment")
            click(page, "Save scores")
            click(page, "Share with the agent", timeout=120_000)
            no_exception(page)
            (review,) = coaching.listing(db)
            assert review["status"] == "shared"
            ctx.close()

            media_urls: list[str] = []

            def keep(response):
                # the player fetches ranges (206), so only the addresses are kept here; each is fetched whole below
                if "/media/" in response.url and "/static/" not in response.url:
                    media_urls.append(response.url)

            ctx, page = start_as(browser, server, "agent", height=1000, on_response=keep)
            page.get_by_role("heading", name="My reviews").wait_for()
            # the login survives a reload and a second tab; the cookie is one no script can read
            page.wait_for_function("() => !document.cookie.includes('clipkit_session')")
            for _ in range(50):
                if any(c["name"] == "clipkit_session" for c in ctx.cookies()):
                    break
                page.wait_for_timeout(200)
            (cookie,) = [c for c in ctx.cookies() if c["name"] == "clipkit_session"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert cookie["value"] not in page.url
            page.reload()
            page.get_by_role("heading", name="My reviews").wait_for(timeout=60_000)
            assert page.get_by_role("button", name="Log in").count() == 0
            tab = ctx.new_page()
            tab.goto(server + "/my-reviews")
            tab.get_by_role("heading", name="My reviews").wait_for(timeout=60_000)
            tab.close()
            other = browser.new_context()  # another browser at the same address is not logged in
            stranger = other.new_page()
            stranger.goto(server + "/my-reviews")
            stranger.get_by_role("button", name="Log in").wait_for(timeout=60_000)
            assert stranger.get_by_role("heading", name="My reviews").count() == 0
            other.close()
            for other in ("manager", "trainer", "compliance"):
                for spec in _ui.PAGES[other]:
                    assert page.get_by_role("link", name=spec.title).count() == 0, spec.title
            heard: dict[str, bytes] = {}

            def fetch_shown() -> None:
                """What the player's addresses serve, whole, while the page still shows them."""
                page.locator("[data-testid=stAudio]").first.wait_for(timeout=60_000)
                page.wait_for_timeout(500)
                for u in media_urls:
                    if u not in heard:
                        r = ctx.request.get(u)
                        assert r.ok, (u, r.status)
                        heard[u] = r.body()

            click(page, "Listen")
            fetch_shown()
            click(page, "0:04.50")  # the comment's moment
            fetch_shown()
            page.get_by_role("textbox", name="Anything you want to add (optional)").fill("Thanks, noted")
            click(page, "Acknowledge")
            page.get_by_text(re.compile(r"^Acknowledged\.")).wait_for()
            no_exception(page)
            # logging out ends the session on the server and clears the cookie: a reload shows the login form
            logout(page)
            page.reload()
            page.get_by_role("button", name="Log in").wait_for(timeout=60_000)
            # the session is over on the server (the reload shows the login form); the browser drops the
            # cookie when the page's component has asked for that, which may come a moment later
            for _ in range(50):
                if not [c for c in ctx.cookies() if c["name"] == "clipkit_session" and c["value"]]:
                    break
                page.wait_for_timeout(200)
            assert not [c for c in ctx.cookies() if c["name"] == "clipkit_session" and c["value"]]
            ctx.close()
        finally:
            browser.close()
    done = coaching.get(db, review["id"])
    assert done["status"] == "acknowledged" and done["reply"] == "Thanks, noted"
    rendered = coaching.current_audio(db, coaching._review(db, review["id"]))
    got = [(u, len(b), hashlib.sha256(stored(b)).hexdigest()) for u, b in heard.items()]
    assert got and all(h == rendered["sha256"] for _, _, h in got), (got, rendered)
    plays = [e for e in auditlog.entries(db, kind="review.play")[0] if e["actor"] == "agent"]
    assert plays and all(e["data"]["decision"] == "allowed" for e in plays)
    outside = sorted({u for u in REQUESTED if not u.startswith((server, "data:", "blob:"))})
    assert not outside, outside
