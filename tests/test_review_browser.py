"""The review page in a real browser (Debian's chromium driven by Playwright): open, filter,
correct by keyboard, re-run, reload keeps the corrections; a name not in the cast; two tabs
correcting at once. Skips when the review extra or chromium is absent."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from dramasr.data import load_drama, save_drama  # noqa: E402
from dramasr.data.predictions import write_predictions  # noqa: E402
from dramasr.review.app import BackgroundServer, ReviewSession  # noqa: E402
from dramasr.synth import synth_drama  # noqa: E402

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from dramasr.attribute import attribute

    root = tmp_path_factory.mktemp("review_browser")
    drama_dir = root / "syn"
    save_drama(synth_drama(seed=5, episodes=2, lines_per_episode=120, name="syn"), drama_dir)
    pred = root / "pred.jsonl"
    write_predictions(pred, attribute(load_drama(drama_dir), seeds="1pct").records)
    return drama_dir, pred


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def served(small: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[str, ReviewSession]]:
    drama_dir, pred = small
    session = ReviewSession(load_drama(drama_dir), pred, tmp_path / "corrections.jsonl",
                            output=tmp_path / "rerun.jsonl")
    with BackgroundServer(session) as url:
        yield url, session


def _open(browser: object, url: str):  # -> Page
    page = browser.new_page(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_selector('body[data-ready="1"]')
    return page


def _saved(session: ReviewSession) -> dict[int, str]:
    return {i: str(c.speaker) for i, c in session.corrections.current().lines.items()}


def test_open_and_filter(browser: object, served: tuple[str, ReviewSession]) -> None:
    url, session = served
    page = _open(browser, url)
    assert page.locator("#rows tr").count() == 200  # first page of 240 lines
    assert "240 lines" in page.inner_text("#count")
    page.select_option("#f-episode", "2")
    page.wait_for_function("document.querySelector('#count').textContent.startsWith('120 lines')")
    assert set(page.locator("#rows tr td:nth-child(2)").all_inner_texts()) == {"2"}
    character = session.meta()["characters"][0][0]
    page.select_option("#f-character", character)
    page.wait_for_timeout(300)
    speakers = page.locator("#rows tr td.spk").all_inner_texts()
    assert speakers and all(s.startswith(character) for s in speakers)
    page.select_option("#f-character", "")
    page.select_option("#f-episode", "")
    page.fill("#f-conf", "0.9")
    page.dispatch_event("#f-conf", "change")
    page.wait_for_timeout(300)
    confidences = [float(c) for c in page.locator("#rows tr td.conf").all_inner_texts()]
    assert confidences and max(confidences) <= 0.9
    # the deciding evidence in words
    assert "stage" in page.locator("#rows tr td.ev").first.inner_text()
    page.close()


def test_correct_by_keyboard_rerun_and_reload(browser: object, served: tuple[str, ReviewSession]) -> None:
    url, session = served
    page = _open(browser, url)
    first = session.records[0]
    line0 = int(first["line"])
    named = sorted(n for n in session.meta()["speakers"] if n != first["speaker"] and n != "其他")
    new_name = named[0]
    page.keyboard.press("c")
    page.keyboard.type(new_name)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#message').textContent.includes('saved')")
    assert _saved(session) == {line0: new_name}
    # the selection moved down one line: accept it, then mark the next one Other
    page.keyboard.press("a")
    page.wait_for_function(f"document.querySelector('#message').textContent.includes('line {line0 + 1}:')")
    page.keyboard.press("o")
    page.wait_for_function(f"document.querySelector('#message').textContent.includes('line {line0 + 2}:')")
    saved = _saved(session)
    assert saved[line0 + 1] == session.records[1]["speaker"] and saved[line0 + 2] == "其他"
    assert page.locator("#rows tr.corrected").count() == 3
    # re-run with the corrections: the changed lines are highlighted
    page.click("#rerun")
    page.wait_for_selector('body[data-version="1"]', timeout=120_000)
    assert "lines changed" in page.inner_text("#message")
    assert page.locator("#rows tr.changed").count() >= 1
    row = page.locator(f'#rows tr[data-line="{line0}"]')
    assert "changed" in row.get_attribute("class") and new_name in row.locator("td.spk").inner_text()
    assert Path(session.output).exists()
    # reload: the corrections are still there
    page.reload()
    page.wait_for_selector('body[data-ready="1"]')
    assert page.locator("#rows tr.corrected").count() == 3
    page.close()


def test_name_not_in_cast_gives_a_clear_message(browser: object, served: tuple[str, ReviewSession]) -> None:
    url, session = served
    page = _open(browser, url)
    page.keyboard.press("c")
    page.keyboard.type("胡湘江")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#message').className === 'error'")
    message = page.inner_text("#message")
    assert "'胡湘江' is not in the cast of syn" in message and "\n" not in message
    assert _saved(session) == {}
    page.close()


def test_two_tabs_correcting_at_once_lose_nothing(browser: object, served: tuple[str, ReviewSession]) -> None:
    url, session = served
    tab1, tab2 = _open(browser, url), _open(browser, url)
    lines = [int(r["line"]) for r in session.records]
    script = """async ([lines, who]) => Promise.all(lines.map((line) => fetch('/api/corrections', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({line, speaker: '其他', who})})
        .then((r) => r.status)))"""
    # both tabs fire their corrections together (the browser runs each tab's requests in parallel)
    h1 = tab1.evaluate_handle(f"window.p = ({script})({json.dumps([lines[0:120:2], 'tab1'])})")
    h2 = tab2.evaluate_handle(f"window.p = ({script})({json.dumps([lines[1:120:2], 'tab2'])})")
    assert set(tab1.evaluate("window.p")) == {200} and set(tab2.evaluate("window.p")) == {200}
    del h1, h2
    # and by keyboard, interleaved
    for _ in range(3):
        for tab in (tab1, tab2):
            tab.keyboard.press("o")
    for _ in range(100):  # the keyboard corrections are saved asynchronously
        rows = session.corrections.path.read_text().splitlines()
        if len(rows) >= 126:
            break
        tab1.wait_for_timeout(100)
    saved = _saved(session)
    assert set(lines[:120]) <= set(saved)
    assert len(rows) == 126 and all(json.loads(r)["speaker"] == "其他" for r in rows)
    tab1.reload()
    tab1.wait_for_selector('body[data-ready="1"]')
    assert tab1.locator("#rows tr.corrected").count() >= 120
    tab1.close()
    tab2.close()


def test_media_file_gives_a_player_at_the_line(browser: object, small: tuple[Path, Path], tmp_path: Path) -> None:
    import wave

    drama_dir, pred = small
    drama = load_drama(drama_dir)
    media = tmp_path / "media"
    media.mkdir()
    seconds = int(drama.lines.end[: drama.episodes[0].line_stop].max()) + 1
    with wave.open(str(media / "0001.wav"), "wb") as out:  # a silent episode 1, 8 kHz mono
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000 * seconds)
    session = ReviewSession(drama, pred, tmp_path / "c.jsonl", media=[media])
    assert session.meta()["media"] == {"1": "audio"}
    with BackgroundServer(session) as url:
        page = _open(browser, url)
        page.wait_for_selector("#media audio")
        start = float(drama.lines.start[int(session.records[0]["line"])])  # the selected line's start
        page.wait_for_function(f"Math.abs(document.querySelector('#media audio').currentTime - {start}) < 0.05")
        page.keyboard.press("p")  # plays the line
        status = page.evaluate("async () => (await fetch('/media/1', {headers: {Range: 'bytes=0-99'}})).status")
        assert status == 206
        page.select_option("#f-episode", "2")  # no media for episode 2: text only
        page.wait_for_selector("#media .ev")
        assert "text only" in page.inner_text("#media")
        page.close()
