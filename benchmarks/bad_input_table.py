"""The bad-input table of BENCHMARKS.md: each breakage of tests/bad_inputs.py once, on a
synthetic drama, with the exit status and the message a user sees.

    python benchmarks/bad_input_table.py > table.md

The same catalogue and the same checks run in tests/test_bad_input.py (there hypothesis
moves each breakage around the drama); this prints one fixed instance of each.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bad_inputs import CATALOGUE, run_breakage  # noqa: E402
from tests.test_bad_input import check  # noqa: E402

from dramasr.data import save_drama  # noqa: E402
from dramasr.synth import synth_drama  # noqa: E402


def main() -> None:
    print("| breakage | expected | exit | what the user reads (stderr, first line) | check |")
    print("|---|---|---:|---|---|")
    with tempfile.TemporaryDirectory(prefix="dramasr-bad-table-") as tmp:
        base = save_drama(synth_drama(seed=5, episodes=3, lines_per_episode=50, name="drama"), Path(tmp) / "base")
        for k, breakage in enumerate(CATALOGUE):
            work = Path(tmp) / f"case{k}"
            work.mkdir()
            outcome = run_breakage(base, work, breakage, lambda n: n // 2)
            try:
                check(outcome, breakage)
                verdict = "pass"
            except AssertionError as exc:
                verdict = f"FAIL: {str(exc).splitlines()[0]}"
            lines = [ln for ln in outcome.stderr.splitlines() if ln.startswith(("error:", "mended:", "warning:"))]
            message = (lines[0] if lines else "(nothing)").replace(str(work), "…").replace("|", "\\|")
            message = re.sub(r"\s+", " ", message)[:220]
            print(f"| {breakage.name} | {breakage.expect} | {outcome.exit_code} | {message} | {verdict} |")


if __name__ == "__main__":
    main()
