"""Loading time and peak RSS of the shared dramas (issue 2 target: ren_shi_jian <= 5 s, <= 1.5 GB).

    python benchmarks/bench_load.py [--repeats 3]
"""

from __future__ import annotations

import argparse

from _measure import SHARED, run_measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dramas = sorted(p.name for p in (SHARED / "dramasr").iterdir() if (p / "subtitle_data").is_dir())
    print("| drama | lines | face tracks | load wall s (median) | runs | peak RSS MB |")
    print("|---|---:|---:|---:|---|---:|")
    for name in dramas:
        code = (
            "from dramasr.data import load_drama\n"
            f"d = load_drama({str(SHARED / 'dramasr' / name)!r})\n"
            "result.update(lines=len(d.lines), faces=len(d.faces))"
        )
        r = run_measured(code, args.repeats)
        print(f"| {name} | {r['lines']} | {r['faces']} | {r['wall_s']:.2f} | {r['wall_runs']} "
              f"| {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
