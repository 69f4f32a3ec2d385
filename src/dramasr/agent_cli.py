# ruff: noqa: E501  (typer option declarations read best on one line each, as in cli.py)
"""Command-line side of the LLM agent: `dramasr agent` (ask about a line or a range, or
replay saved trajectories), `dramasr export-sft` / `export-rl`, and the `--llm` hybrid
step of `dramasr attribute`. Registered in cli.py by `register(app)`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dramasr.errors import DramaError

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

LLM_HELP = ("Model: an OpenAI-compatible base URL (http://HOST:PORT/v1; key from $OPENAI_API_KEY) or gguf:PATH "
            "(in-process llama.cpp), or gguf:smollm2 / gguf:gemma3-270m (tiny models of the llm extra).")
REPORT_THRESHOLDS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)

# options shared by export-sft and export-rl: which training dramas, seeded how
DataOption = Annotated[Path, typer.Option("--data", help="Folder holding the training dramas.")]
DramasOption = Annotated[list[str] | None, typer.Option("--drama", help="Training drama(s) inside --data (repeatable).")]
SeedsOption = Annotated[str, typer.Option(help="Seeds for propagation on the training dramas.")]


def parse_lines(spec: str, drama: Any) -> list[int]:
    """Global line indices from "1234", "EP:IDX", "EP:IDX-IDX2" (index inside the episode,
    from 0) or "A-B" (global)."""
    n = len(drama.lines)
    try:
        if ":" in spec:
            ep_text, idx_text = spec.split(":", 1)
            number = int(ep_text)
            episode = next((e for e in drama.episodes if e.number == number), None)
            if episode is None:
                raise DramaError(f"no episode {number}", field="--line",
                                 hint=f"episodes are {drama.episodes[0].number}..{drama.episodes[-1].number}")
            lo_text, _, hi_text = idx_text.partition("-")
            lo, hi = int(lo_text), int(hi_text or lo_text)
            size = episode.line_stop - episode.line_start
            if not 0 <= lo <= hi < size:
                raise DramaError(f"episode {number} has lines 0..{size - 1}, not {idx_text}", field="--line")
            return list(range(episode.line_start + lo, episode.line_start + hi + 1))
        lo_text, _, hi_text = spec.partition("-")
        lo, hi = int(lo_text), int(hi_text or lo_text)
    except ValueError:
        raise DramaError(f"cannot read --line {spec!r}", field="--line",
                         hint="use LINE, A-B, EP:IDX or EP:IDX-IDX2 (IDX counts from 0 inside the episode)") from None
    if not 0 <= lo <= hi < n:
        raise DramaError(f"lines {spec} are outside 0..{n - 1}", field="--line")
    return list(range(lo, hi + 1))


def _config(protocol: str, max_turns: int, context_lines: int, max_tokens: int, temperature: float,
            grammar: bool, language: str) -> Any:
    from dramasr.reason.agent import AgentConfig

    return AgentConfig(protocol=protocol, max_turns=max_turns, context_lines=context_lines, max_tokens=max_tokens,
                       temperature=temperature, grammar=grammar, language=language).check()


def _backend(spec: str, model: str, concurrency: int, timeout_s: float, cache: Path | None, grammar: bool) -> Any:
    from dramasr.reason.backends import CachedBackend, llm_backend

    backend = llm_backend(spec, model=model, concurrency=concurrency, timeout_s=timeout_s, grammar=grammar)
    return CachedBackend(backend, cache) if cache is not None else backend


def cpu_records(drama: Any, seeds: str, pred: Path | None) -> tuple[list[Any], Any]:
    """The CPU reasoner's records (from --pred or a fresh run) and propagation's label state."""
    from dramasr.attribute import attribute, propagate_labels

    state = propagate_labels(drama, seeds)
    if pred is not None:
        from dramasr.data.predictions import read_predictions
        from dramasr.reason.agent import records_from_predictions

        return records_from_predictions(read_predictions(pred, drama)), state
    with err_console.status("running the CPU reasoner (use --pred to reuse a dramasr attribute output) ..."):
        return attribute(drama, labels=state).records, state


def agent_context(drama: Any, state: Any, records: Sequence[Any]) -> Any:
    """The tools' context with the reasoner's labels as the current ones."""
    from dramasr.tools import Context

    return Context.build(drama, state.with_labels([r.speaker for r in records]))


def apply_llm(drama: Any, records: list[Any], llm: str, *, seeds: str = "1pct", model: str = "default",
              threshold: float | None = None, share: float = 0.03, trajectories: Path | None = None) -> list[Any]:
    """`dramasr attribute --llm`: the records with low-margin lines answered by the LLM;
    prints the threshold report when the drama has truth."""
    from dramasr.attribute import propagate_labels
    from dramasr.reason.agent import AgentConfig, hybrid, summary, threshold_report

    config = AgentConfig().check()
    cache = trajectories.with_name(trajectories.name + ".cache") if trajectories is not None else None
    backend = _backend(llm, model, 4, 120.0, cache, grammar=False)
    ctx = agent_context(drama, propagate_labels(drama, seeds), records)
    started = time.perf_counter()
    with err_console.status("asking the LLM about low-margin lines ...") as status:
        result = hybrid(ctx, records, backend, config, threshold=threshold, share=share, trajectories=trajectories,
                        hook=lambda step, done, total: status.update(f"{step}: {done}/{total} lines"))
    stats = summary(result.trajectories.values(), time.perf_counter() - started)
    console.print(f"LLM asked about {len(result.sent)} lines (margin < {result.threshold:.4f}): "
                  f"{stats['valid_answer']:.0%} answered, {stats['fallback_share']:.0%} kept the CPU answer, "
                  f"{stats['tool_calls_per_line']:.1f} tool calls per line")
    if any(drama.lines.speaker):
        rows = threshold_report(drama, records, result.trajectories,
                                sorted({t for t in REPORT_THRESHOLDS if t <= result.threshold} | {result.threshold}))
        console.print(_report_table(rows))
    return result.records


def _report_table(rows: Sequence[dict[str, float]]) -> Table:
    table = Table(title="hybrid: LLM below the threshold, CPU reasoner above")
    for col in ("threshold", "lines sent", "asked", "hybrid acc.", "CPU acc."):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['threshold']:.4f}", f"{r['sent_share']:.2%}", str(r["asked"]),
                      f"{r['hybrid_accuracy']:.2%}", f"{r['cpu_accuracy']:.2%}")
    return table


def register(app: typer.Typer) -> None:
    """Add `agent`, `export-sft` and `export-rl` to the dramasr command."""
    from dramasr.cli import _load, _writable_file, user_errors

    def _training_dramas(data_dir: Path, dramas: list[str] | None) -> list[Any]:
        from dramasr.train import DEFAULT_TRAINING_DRAMAS

        return [_load(data_dir / name) for name in dramas or DEFAULT_TRAINING_DRAMAS]

    @app.command("agent")
    @user_errors
    def agent(
        drama_dir: Annotated[Path, typer.Argument(help="Drama folder in the DramaSR layout.")],
        llm: Annotated[str | None, typer.Option("--llm", help=LLM_HELP)] = None,
        line: Annotated[str | None, typer.Option("--line", help="LINE, A-B, EP:IDX or EP:IDX-IDX2 (IDX from 0 within the episode).")] = None,
        replay_file: Annotated[Path | None, typer.Option("--replay", help="Replay a trajectories JSONL (saved replies, tools re-run) and check each ends as saved.")] = None,
        pred: Annotated[Path | None, typer.Option("--pred", help="The CPU reasoner's predictions (dramasr attribute output); default: run it.")] = None,
        seeds: Annotated[str, typer.Option(help="Seeds for propagation (as dramasr attribute).")] = "1pct",
        model: Annotated[str, typer.Option(help="Model name sent to an HTTP server.")] = "default",
        protocol: Annotated[str, typer.Option(help="tagged (<think>/<tool>/<answer>, the release's) or json.")] = "tagged",
        max_turns: Annotated[int, typer.Option(min=1, help="Model replies per line, corrected ones included.")] = 8,
        context_lines: Annotated[int, typer.Option(min=0, help="Lines shown before and after the target.")] = 30,
        max_tokens: Annotated[int, typer.Option(min=8, help="Tokens per reply.")] = 512,
        temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature (0 = greedy).")] = 0.0,
        grammar: Annotated[bool, typer.Option("--grammar/--no-grammar", help="Constrain replies to the protocol (in-process llama.cpp always can; for HTTP only llama.cpp's server reads it).")] = True,
        language: Annotated[str, typer.Option(help="zh, en or auto (from the drama's text).")] = "auto",
        concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once (HTTP).")] = 4,
        timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait for one HTTP reply.")] = 120.0,
        trajectories: Annotated[Path | None, typer.Option("--trajectories", help="Append each line's trajectory to this JSONL; lines already in it are not asked again (resume).")] = None,
        cache: Annotated[Path | None, typer.Option("--cache", help="Folder of cached replies: an identical request is answered from it.")] = None,
        show: Annotated[bool, typer.Option("--show/--no-show", help="Print each conversation.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print the trajectories as JSON lines.")] = False,
    ) -> None:
        """Ask the LLM agent who speaks a line (or a range), for inspection; or replay trajectories."""
        from dramasr.reason.agent import drama_language, line_tasks, read_trajectories, replay, run_agent, summary

        if replay_file is None and (llm is None or line is None):
            raise DramaError("give --llm and --line (or --replay FILE)", field="--llm")
        drama = _load(drama_dir)
        if replay_file is None:  # bad options fail before the CPU reasoner runs
            config = _config(protocol, max_turns, context_lines, max_tokens, temperature, grammar, language)
            lines = parse_lines(line or "", drama)
            backend = _backend(llm or "", model, concurrency, timeout, cache, grammar)
        records, state = cpu_records(drama, seeds, pred)
        ctx = agent_context(drama, state, records)
        if replay_file is not None:
            saved = read_trajectories(replay_file)
            same = 0
            for t in saved:
                again = replay(ctx, t)
                ok = again["speaker"] == t["speaker"] and again["turns"] == t["turns"]
                same += ok
                console.print(f"line {t['line']}: {t['speaker']} -> {again['speaker']} {'same' if ok else 'DIFFERENT'}")
            console.print(f"{same}/{len(saved)} trajectories replayed identically")
            if same != len(saved):
                raise typer.Exit(1)
            return
        tasks = line_tasks(ctx, records, lines, config, drama_language(drama, config))
        started = time.perf_counter()
        results = run_agent(ctx, tasks, backend, config, labels=[r.speaker for r in records],
                            trajectories=trajectories)
        elapsed = time.perf_counter() - started
        for i in lines:
            t = results[i]
            if as_json:
                print(json.dumps(t, ensure_ascii=False))
                continue
            if show:
                console.rule(f"line {i} (episode {t['episode']})")
                for m in t["messages"][1:]:
                    console.print(f"[bold]{m['role']}[/]: {m['content']}", highlight=False, markup=False)
            truth = drama.lines.speaker[i]
            console.print(f"line {i}: LLM {t['answer']!r} ({t['status']}, {len(t['turns'])} turns, "
                          f"{t['tool_calls']} tool calls) -> speaker {t['speaker']}; CPU {t['fallback']}"
                          + (f"; truth {truth}" if truth else ""), highlight=False)
        stats = summary(results.values(), elapsed)
        (err_console if as_json else console).print(
            f"{stats['lines']} lines, {stats['lines_per_s']:.3f} lines/s, valid first try {stats['valid_first_try']:.0%}, "
            f"valid answer {stats['valid_answer']:.0%}, {stats['tool_calls_per_line']:.1f} tool calls per line")

    @app.command("export-sft")
    @user_errors
    def export_sft_cmd(
        output: Annotated[Path, typer.Option("--output", "-o", help="sharegpt JSON to write (dataset_info.json goes beside it).")],
        data_dir: DataOption = Path("../shared/dramasr"),
        dramas: DramasOption = None,
        limit: Annotated[int, typer.Option(min=1, help="At most this many conversations (seeded random subset).")] = 2000,
        seed: Annotated[int, typer.Option(help="Random seed of the line sample.")] = 0,
        seeds: SeedsOption = "1pct",
    ) -> None:
        """SFT conversations for LLaMA-Factory (sharegpt): real tool outputs, the truth as answer."""
        from dramasr.finetune import export_sft, training_contexts

        _writable_file(output, "--output")
        loaded = _training_dramas(data_dir, dramas)
        with err_console.status("building conversations ..."):
            info = export_sft(training_contexts(loaded, seeds), output, limit=limit, seed=seed)
        console.print(f"wrote {info['conversations']} conversations ({info['kinds']}) -> {output}; "
                      f"{info['dataset_info']}")

    @app.command("export-rl")
    @user_errors
    def export_rl_cmd(
        output: Annotated[Path, typer.Option("--output", "-o", help="Training parquet to write (validation: NAME_val.parquet beside it).")],
        data_dir: DataOption = Path("../shared/dramasr"),
        dramas: DramasOption = None,
        limit: Annotated[int, typer.Option(min=1, help="At most this many prompts (seeded random subset).")] = 2000,
        validation_share: Annotated[float, typer.Option(min=0.0, max=0.5, help="Share of prompts kept for validation.")] = 0.05,
        seed: Annotated[int, typer.Option(help="Random seed of the line sample and the split.")] = 0,
        seeds: SeedsOption = "1pct",
    ) -> None:
        """RL prompts for verl (parquet: prompt, reward_model ground truth, extra_info); score rollouts with dramasr.finetune.reward."""
        from dramasr.finetune import export_rl, training_contexts

        if output.suffix != ".parquet":
            raise DramaError(f"output must end in .parquet, not {output.suffix!r}", field="--output")
        _writable_file(output, "--output")
        loaded = _training_dramas(data_dir, dramas)
        with err_console.status("building prompts ..."):
            info = export_rl(training_contexts(loaded, seeds), output, limit=limit, seed=seed,
                             validation_share=validation_share)
        console.print(f"wrote {info['train_rows']} training and {info['validation_rows']} validation prompts -> "
                      f"{info['train']}, {info['validation']}")
