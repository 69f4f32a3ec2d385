"""Issue 19: the LLM agent with the tiny packaged models on a real drama, in the hybrid.

The threshold is the one sending `--share` of the lines (3%); on 2 shared cores a tiny
model takes seconds per line, so the LLM is asked about a fixed seeded subset of those
lines (`--subset`); the other sent lines keep the CPU answer and the report says so.
Prints lines/s, valid-first-try share, valid-answer share, tool calls per line and the
hybrid accuracy against the CPU reasoner alone; with --http, the same lines through
llama.cpp's OpenAI-compatible server on 127.0.0.1 and whether the answers are identical.

    python benchmarks/bench_agent.py --pred /tmp/chen_pred.jsonl --model smollm2 --subset 40
    python benchmarks/bench_agent.py --pred /tmp/chen_pred.jsonl --model smollm2 --subset 10 --http

(--pred: `dramasr attribute ../shared/dramasr/chen_mo_de_zhen_xiang -o /tmp/chen_pred.jsonl`.)
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from dramasr.attribute import propagate_labels
from dramasr.data import load_drama
from dramasr.data.predictions import read_predictions
from dramasr.reason.agent import (
    AgentConfig,
    drama_language,
    line_tasks,
    record_margin,
    records_from_predictions,
    run_agent,
    summary,
    threshold_for_share,
    threshold_report,
)
from dramasr.reason.backends import HttpBackend, LlamaCppBackend, tiny_model_path
from dramasr.score import line_correct
from dramasr.tools import Context

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--drama", default=str(SHARED / "dramasr" / "chen_mo_de_zhen_xiang"))
    ap.add_argument("--pred", required=True, help="dramasr attribute output for the drama")
    ap.add_argument("--model", default="smollm2", help="smollm2, gemma3-270m or a .gguf path")
    ap.add_argument("--share", type=float, default=0.03)
    ap.add_argument("--subset", type=int, default=40, help="lines of the sent ones asked (seeded); 0 = all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--context-lines", type=int, default=30)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--think-chars", type=int, default=120)
    ap.add_argument("--max-turns", type=int, default=6)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--http", action="store_true", help="also through llama_cpp.server; compare answers")
    ap.add_argument("--http-lines", type=int, default=0, help="compare on the first K asked lines (0 = all)")
    ap.add_argument("--out", default=None, help="trajectories JSONL (default: /tmp/bench_agent_MODEL.jsonl)")
    args = ap.parse_args()

    drama = load_drama(args.drama)
    records = records_from_predictions(read_predictions(args.pred, drama))
    state = propagate_labels(drama, "1pct")
    ctx = Context.build(drama, state.with_labels([r.speaker for r in records]))
    config = AgentConfig(context_lines=args.context_lines, max_tokens=args.max_tokens, think_chars=args.think_chars,
                         max_turns=args.max_turns).check()
    threshold = threshold_for_share(records, args.share)
    sent = [r.line for r in records if not (r.evidence or {}).get("seed") and record_margin(r) < threshold]
    rng = np.random.default_rng(args.seed)
    asked = sorted(rng.choice(sent, size=min(args.subset, len(sent)), replace=False).tolist()) if args.subset else sent
    language = drama_language(drama, config)
    tasks = line_tasks(ctx, records, asked, config, language)
    path = Path(args.model) if args.model.endswith(".gguf") else tiny_model_path(args.model)
    print(f"{drama.name}: threshold {threshold:.4f} sends {len(sent)} lines ({len(sent) / len(records):.2%}); "
          f"asking {args.model} about {len(asked)} of them")

    backend = LlamaCppBackend(path, n_ctx=args.n_ctx, n_threads=1)
    out = Path(args.out or f"/tmp/bench_agent_{path.stem}.jsonl")
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    local = run_agent(ctx, tasks, backend, config, labels=[r.speaker for r in records], trajectories=out)
    elapsed = time.perf_counter() - started
    stats = summary(local.values(), elapsed)
    report = threshold_report(drama, records, local, [0.0, threshold])
    truth = [drama.lines.speaker[i] for i in asked]
    named = drama.named_characters()
    llm_ok = line_correct(truth, [local[i]["speaker"] for i in asked], named)
    cpu_ok = line_correct(truth, [records[i].speaker for i in asked], named)
    statuses = [t["status"] for t in local.values()]
    result = {"model": path.name, "sent_lines": len(sent), "asked": len(asked), "threshold": threshold,
              "seconds": round(elapsed, 1), **{k: round(v, 4) for k, v in stats.items()},
              "asked_llm_accuracy": round(float(llm_ok.mean()), 4),
              "asked_cpu_accuracy": round(float(cpu_ok.mean()), 4),
              "hybrid_accuracy": round(report[1]["hybrid_accuracy"], 5),
              "cpu_accuracy": round(report[1]["cpu_accuracy"], 5),
              "statuses": {s: statuses.count(s) for s in sorted(set(statuses))}}
    print(json.dumps(result, ensure_ascii=False))

    if args.http:
        port = _free_port()
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
                   "--port", str(port), "--n_ctx", str(args.n_ctx), "--n_threads", "1", "--n_threads_batch", "1"]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}/v1"
            _wait(base, proc)
            http = HttpBackend(base, path.stem, grammar=True, concurrency=1, timeout_s=300)
            started = time.perf_counter()
            compared = tasks[:args.http_lines] if args.http_lines else tasks
            remote = run_agent(ctx, compared, http, config, labels=[r.speaker for r in records])
            http_s = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(10)
        same_answer = sum(remote[i]["speaker"] == local[i]["speaker"] for i in remote)
        same_replies = sum([t["content"] for t in remote[i]["turns"]] == [t["content"] for t in local[i]["turns"]]
                           for i in remote)
        print(json.dumps({"http_lines_per_s": round(len(remote) / http_s, 4), "identical_answers": same_answer,
                          "identical_replies": same_replies, "lines": len(remote)}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("llama_cpp.server did not start") from None
            time.sleep(0.5)


if __name__ == "__main__":
    main()
