"""The review page on a real drama, in a real browser: time from "re-run with corrections"
to the updated page, and (with --screenshots) pictures of the main views for the README.

    python benchmarks/bench_review_page.py --drama kuang_biao --pred /tmp/kb.jsonl
    python benchmarks/bench_review_page.py --drama chen_mo_de_zhen_xiang --screenshots docs

A reviewer (simulated: answers with the truth, through the page's own API) corrects the
--corrections lines that `--suggest` ranks first; then the re-run button is clicked and the
clock runs until the page shows the re-attributed lines with the changed ones highlighted.
Needs the review extra and Debian's chromium. The predictions are made first when --pred
does not exist (not timed here).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drama", default="chen_mo_de_zhen_xiang")
    parser.add_argument("--pred", type=Path, help="predictions to review (made when absent)")
    parser.add_argument("--corrections", type=int, default=20, help="corrections before the re-run")
    parser.add_argument("--screenshots", type=Path, help="folder for review_*.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from bench_review import _speaks_most, answer  # type: ignore[import-not-found]
    from playwright.sync_api import sync_playwright

    from dramasr.attribute import attribute
    from dramasr.data import load_drama
    from dramasr.data.predictions import write_predictions
    from dramasr.review.app import BackgroundServer, ReviewSession
    from dramasr.review.suggest import suggest

    drama = load_drama(SHARED / "dramasr" / args.drama)
    pred = args.pred or Path(tempfile.mkdtemp()) / f"{args.drama}.jsonl"
    if not pred.exists():
        write_predictions(pred, attribute(drama, seeds="1pct").records)
    work = Path(tempfile.mkdtemp(prefix="review_page_"))
    session = ReviewSession(drama, pred, work / "corrections.jsonl", output=work / "rerun.jsonl")
    named = drama.named_characters()
    picks = suggest(drama, session.pred, args.corrections)
    out: dict = {"drama": args.drama, "lines": len(drama.lines), "corrections": 0}
    with BackgroundServer(session) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 860})
        t = time.perf_counter()
        page.goto(url)
        page.wait_for_selector('body[data-ready="1"]')
        out["open_s"] = round(time.perf_counter() - t, 2)
        for s in picks:
            said = answer(drama.lines.speaker[s.line], named)
            if said is None:
                continue
            group = bool(s.group_lines) and _speaks_most(drama, named, s.group_lines, said)  # as bench_review
            body = {"line": s.line, "speaker": said, "who": "simulated", "group": group}
            status = page.evaluate("""async (b) => (await fetch('/api/corrections', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: JSON.stringify(b)})).status""", body)
            out["corrections"] += status == 200
        page.reload()
        page.wait_for_selector('body[data-ready="1"]')
        page.keyboard.press("j")
        page.keyboard.press("j")
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.screenshots / "review_lines.png"))
            page.select_option("#f-only", "suggested")
            page.wait_for_function("document.querySelector('#rows .why') !== null", timeout=120_000)
            page.screenshot(path=str(args.screenshots / "review_suggested.png"))
            page.select_option("#f-only", "")
            page.wait_for_timeout(500)
        t = time.perf_counter()
        page.click("#rerun")
        page.wait_for_selector('body[data-version="1"]', timeout=1_200_000)
        out["rerun_to_updated_page_s"] = round(time.perf_counter() - t, 1)
        out["server_rerun_s"] = session.rerun_status()["seconds"]
        out["changed_lines"] = session.rerun_status()["changed"]
        out["page_message"] = page.inner_text("#message")
        if args.screenshots:
            page.select_option("#f-only", "changed")
            page.wait_for_timeout(800)
            page.keyboard.press("j")
            page.screenshot(path=str(args.screenshots / "review_rerun_changed.png"))
            page.select_option("#f-only", "")
            page.wait_for_timeout(500)
            page.keyboard.press("c")
            page.keyboard.type("胡湘江")
            page.keyboard.press("Enter")
            page.wait_for_function("document.querySelector('#message').className === 'error'")
            page.screenshot(path=str(args.screenshots / "review_bad_name.png"))
        browser.close()
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
