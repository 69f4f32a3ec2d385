"""The paper's method: an LLM reads a line in its dialogue context, calls the evidence
tools and answers with a candidate; replies outside the protocol get corrective messages;
a line the model does not settle keeps the CPU reasoner's answer, marked so.

`hybrid()` sends only the lines whose reasoner margin is below a threshold; every
conversation is saved as one JSONL trajectory (appended as it finishes, so a killed run
resumes where it stopped) and can be replayed (`replay()`).

Over 500 lines on purpose: the conversation loop, its resumable trajectory log and the
hybrid's choice of lines share `AgentConfig`, `LineTask` and the trajectory format.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.model import NEW_CHARACTER_PREFIX, OTHER, Drama
from dramasr.data.predictions import PredictionRecord
from dramasr.errors import DramaError
from dramasr.progress import Progress
from dramasr.reason import prompts
from dramasr.reason import protocol as p
from dramasr.reason.backends import Backend, BackendError, ChatRequest, ReplayBackend
from dramasr.tools.base import Context
from dramasr.tools.calling import ALIASES, OTHER_WORDS, call_tool, openai_tools, resolve, tool_names

log = logging.getLogger(__name__)

DEFAULT_TOOLS = ("audio_sim", "faces_on_screen", "dialogue_context", "name_mentions", "char_relation",
                 "scene_caption", "voice_cluster")
VOICE_TOOL = "audio_sim"


@dataclass(frozen=True)
class AgentConfig:
    """How the agent talks to the model. Defaults follow the release where it has one."""

    protocol: str = "tagged"  # "tagged" (<think>/<tool>/<answer>) or "json"
    max_turns: int = 8  # model replies per line, corrected ones included (release: 20 messages)
    context_lines: int = 30  # lines shown before and after the target (release: 30)
    max_candidates: int = 5  # named candidates offered, then Other
    max_tokens: int = 512  # per reply
    temperature: float = 0.0
    seed: int = 0
    grammar: bool = True  # constrain decoding to the protocol where the backend can
    think_chars: int = 150  # the longest <think> the grammar allows (a CJK character can take 3 tokens)
    require_voice: bool = True  # the voice tool must be called before an answer (release rule)
    language: str = "auto"  # "zh", "en" or "auto" (from the drama's text)
    tools: tuple[str, ...] = DEFAULT_TOOLS

    def check(self) -> AgentConfig:
        if self.protocol not in p.PROTOCOLS:
            raise DramaError(f"unknown protocol {self.protocol!r}", field="--protocol", hint="use tagged or json")
        if self.language not in (*prompts.LANGUAGES, "auto"):
            raise DramaError(f"unknown language {self.language!r}", field="--language", hint="use zh, en or auto")
        if self.max_turns < 1 or self.context_lines < 0 or self.max_tokens < 8:
            raise DramaError("max turns must be >= 1, context lines >= 0, max tokens >= 8", field="agent config")
        for name in self.tools:
            if resolve(name) is None:
                raise DramaError(f"unknown tool {name!r}", field="--tool",
                                 hint="choose from " + ", ".join(tool_names()))
        return self


@dataclass(frozen=True)
class LineTask:
    """One line to ask about: its candidates (display names, Other last) and the CPU answer."""

    line: int
    candidates: tuple[str, ...]
    fallback: str
    margin: float = 0.0


# ----------------------------------------------------------------------------- prompts


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def reply_grammar(config: AgentConfig, candidates: Sequence[str], called: Sequence[str] = (),
                  turns_left: int | None = None) -> str:
    """GBNF for one reply: a bounded think, then a tool not yet called or a candidate; no
    answer before the voice tool (when required), only an answer once every tool was called.
    With turns_left: the voice tool is forced on the second-to-last turn if still uncalled,
    and an answer on the last, so a conversation always ends in a valid answer."""
    voice_due = config.require_voice and VOICE_TOOL in config.tools and VOICE_TOOL not in called
    open_tools = [t for t in config.tools if t not in called]
    if turns_left is not None and turns_left <= 1:
        open_tools, voice_due = [], False
    elif turns_left == 2 and voice_due:
        open_tools = [VOICE_TOOL]
    may_answer = not voice_due
    tools = " | ".join(_gbnf_literal(t) for t in open_tools)
    cands = " | ".join(_gbnf_literal(c) for c in candidates)
    # leave room for the tags inside max_tokens: a CJK character can cost 3 tokens, and a
    # reply cut by max_tokens breaks the protocol however the grammar reads
    n = max(1, min(config.think_chars, (config.max_tokens - 40) // 4))
    if config.protocol == "json":
        choice = " | ".join((["tool"] if open_tools else []) + (["answer"] if may_answer or not open_tools else []))
        return (
            f'root ::= "{{\\"think\\": \\"" think "\\", " ({choice}) "}}"\n'
            f'think ::= [^"\\\\\\n]{{0,{n}}}\n'
            + (f'tool ::= "\\"tool\\": {{\\"name\\": \\"" name "\\", \\"arguments\\": {{}}}}"\n'
               f"name ::= {tools}\n" if open_tools else "")
            + f'answer ::= "\\"answer\\": \\"" cand "\\""\ncand ::= {cands}\n'
        )
    branches = (['"<tool>" name "()</tool>"'] if open_tools else []) + \
        (['"<answer>" cand "</answer>"'] if may_answer or not open_tools else [])
    return (
        f'root ::= "<think>" think "</think>" ({" | ".join(branches)})\n'
        f"think ::= [^<]{{0,{n}}}\n"
        + (f"name ::= {tools}\n" if open_tools else "") + f"cand ::= {cands}\n"
    )


def drama_language(drama: Drama, config: AgentConfig) -> prompts.Language:
    if config.language in prompts.LANGUAGES:
        return config.language  # type: ignore[return-value]
    return prompts.detect_language(drama.lines.text)


def initial_messages(ctx: Context, task: LineTask, labels: Sequence[str], config: AgentConfig,
                     language: prompts.Language) -> list[dict[str, str]]:
    """System prompt and the line in its context (+-context_lines, episode borders shown,
    the target's speaker shown as unknown)."""
    drama = ctx.drama
    n = len(drama.lines)
    lo, hi = max(0, task.line - config.context_lines), min(n, task.line + config.context_lines + 1)
    episode = drama.lines.episode
    rows: list[str] = []
    number = 0
    target_number = 0
    for i in range(lo, hi):
        if i > lo and episode[i] != episode[i - 1]:
            rows.append(prompts.EPISODE_BORDER[language])
        number += 1
        speaker = prompts.UNKNOWN[language] if i == task.line else _shown(labels[i], language)
        if i == task.line:
            target_number = number
        rows.append(prompts.context_row(number, speaker, drama.lines.text[i].replace("\n", " ")))
    described = []
    for name in config.tools:
        tools = resolve(name) or []
        described.append((name, " ".join(t.description for t in tools)))
    system = prompts.system_prompt(language, config.protocol, described, VOICE_TOOL)  # type: ignore[arg-type]
    user = prompts.user_prompt(language, rows, target_number, task.candidates)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _shown(label: str, language: prompts.Language) -> str:
    return prompts.OTHER_NAME[language] if label == OTHER else label


# -------------------------------------------------------------------------------- loop


def run_line(ctx: Context, task: LineTask, backend: Backend, config: AgentConfig, *,
             labels: Sequence[str] | None = None, messages: Sequence[Mapping[str, Any]] | None = None,
             named: frozenset[str] | None = None) -> dict[str, Any]:
    """One conversation about one line; returns its trajectory (a JSON-able dict).

    labels: the current speaker of every line, shown in the context (default: ctx's).
    messages: start from these instead of building the prompt (replay)."""
    started = time.perf_counter()
    language = drama_language(ctx.drama, config)
    labels = labels if labels is not None else ctx.state.label
    history = [dict(m) for m in messages] if messages is not None else \
        initial_messages(ctx, task, labels, config, language)
    other_word = prompts.OTHER_NAME[language]
    conversation = p.Conversation(
        candidates=list(task.candidates), other_words=OTHER_WORDS | {other_word},
        tool_names=frozenset(config.tools) | frozenset(ALIASES), voice_tools=frozenset({VOICE_TOOL}),
        require_voice=config.require_voice)
    use_grammar = config.grammar and backend.reads_grammar
    native_tools = openai_tools(list(config.tools)) if config.protocol == "json" and not use_grammar else None
    tool_candidates = [OTHER if c == other_word else c for c in task.candidates]
    turns: list[dict[str, Any]] = []
    status, answer, error = "max_turns", None, None
    executed = duplicates = corrections = 0
    for turn_number in range(config.max_turns):
        grammar = reply_grammar(config, task.candidates, _called(conversation), config.max_turns - turn_number) \
            if use_grammar else None
        request = ChatRequest(history, config.max_tokens, config.temperature, config.seed, grammar, native_tools)
        try:
            reply = backend.complete(request)
        except BackendError as exc:
            status, error = exc.kind, str(exc)
            break
        parsed = p.parse_reply(reply.content, reply.tool_calls, config.protocol)  # type: ignore[arg-type]
        problem = p.judge(parsed, conversation)
        turn: dict[str, Any] = {"content": reply.content, "tool_calls": reply.tool_calls,
                                "finish_reason": reply.finish_reason, "cached": reply.cached,
                                "parsed": parsed.to_dict()}
        assistant: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            assistant["tool_calls"] = [{"id": c.get("id") or f"call_{len(turns)}", "type": "function",
                                        "function": c["function"]} for c in reply.tool_calls]
        history.append(assistant)
        if problem is not None:
            if turns and turns[-1].get("problem") and turns[-1]["content"] == reply.content:
                # the same rejected reply again: greedy decoding is stuck, more turns are wasted
                turn["problem"] = {"code": problem.code, "detail": problem.detail}
                turns.append(turn)
                status = "repeated"
                break
            corrections += 1
            duplicates += problem.code == p.DUPLICATE_CALL
            turn["problem"] = {"code": problem.code, "detail": problem.detail}
            turns.append(turn)
            history.append({"role": "user", "content": prompts.correction(language, problem, _called(conversation))})
            continue
        if parsed.kind == "tool":
            assert parsed.tool is not None
            result = call_tool(ctx, parsed.tool.name, dict(parsed.tool.arguments), line=task.line,
                               candidates=tool_candidates)
            executed += 1
            conversation.called.append(parsed.tool.key())
            turn["tool_result"] = result.to_dict()
            turns.append(turn)
            text = prompts.tool_result(language, parsed.tool.name, result.text, result.ok)
            if reply.tool_calls:
                history.append({"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": text})
            else:
                history.append({"role": "user", "content": text + "\n" + prompts.called_note(
                    language, _called(conversation))})
            continue
        turns.append(turn)
        answer = p.match_candidate(parsed.answer or "", task.candidates, conversation.other_words)
        status = "answered"
        break
    speaker = task.fallback
    if answer is not None:
        named_set = named if named is not None else frozenset(ctx.classes[:-1])
        if answer == other_word or answer in OTHER_WORDS:
            # any non-named label is "Other" to the scoring rule; keep the reasoner's finer one
            speaker = task.fallback if task.fallback not in named_set else OTHER
        else:
            speaker = answer
    first = turns[0] if turns else None
    return {
        "drama": ctx.drama.name, "line": task.line, "episode": int(ctx.drama.lines.episode[task.line]),
        "model": backend.name, "protocol": config.protocol, "language": language,
        "candidates": list(task.candidates), "fallback": task.fallback, "margin": task.margin,
        "status": status, "error": error, "answer": answer, "speaker": speaker,
        "used_fallback": answer is None,
        "valid_first_try": bool(first is not None and "problem" not in first),
        "tool_calls": executed, "duplicate_calls": duplicates, "corrections": corrections,
        "turns": turns, "messages": history, "seconds": round(time.perf_counter() - started, 3),
        "config": asdict(config),
    }


def _called(conversation: p.Conversation) -> list[str]:
    return [key.split("{", 1)[0] for key in conversation.called]


def replay(ctx: Context, trajectory: Mapping[str, Any]) -> dict[str, Any]:
    """Run a saved trajectory again: its replies played back, its tool calls re-run on
    `ctx`. The result matches the saved one when the tools and the code are unchanged."""
    config = AgentConfig(**{**trajectory["config"], "tools": tuple(trajectory["config"]["tools"])})
    task = LineTask(int(trajectory["line"]), tuple(trajectory["candidates"]), trajectory["fallback"],
                    float(trajectory.get("margin", 0.0)))
    replies = [{"content": t["content"], "tool_calls": t.get("tool_calls"), "finish_reason": t.get("finish_reason")}
               for t in trajectory["turns"]]
    backend = ReplayBackend(replies, name=trajectory["model"])
    start = trajectory["messages"][:2]
    return run_line(ctx, task, backend, config, messages=start)


# --------------------------------------------------------------------- many lines, resumable


class TrajectoryLog:
    """Trajectories in a JSONL file, one per line asked about, appended as each finishes.
    Opening it drops a half-written last row (a run killed mid-write) so appends stay clean."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.done: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if self.path.is_file():
            raw = self.path.read_bytes()
            good = 0
            for row in raw.split(b"\n")[:-1] if raw else []:
                try:
                    doc = json.loads(row)
                except ValueError:
                    break
                self.done[int(doc["line"])] = doc
                good += len(row) + 1
            if good != len(raw):
                log.warning("%s: dropping %d bytes of an unfinished row", self.path, len(raw) - good)
                with self.path.open("r+b") as fh:
                    fh.truncate(good)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, trajectory: Mapping[str, Any]) -> None:
        row = json.dumps(trajectory, ensure_ascii=False).encode() + b"\n"
        with self._lock:
            with self.path.open("ab") as fh:
                fh.write(row)
                fh.flush()
                os.fsync(fh.fileno())
            self.done[int(trajectory["line"])] = dict(trajectory)


def read_trajectories(path: str | Path) -> list[dict[str, Any]]:
    if not Path(path).is_file():
        raise DramaError("no such trajectories file", file=path, hint="give the JSONL written by --trajectories")
    return list(TrajectoryLog(path).done.values())


def run_agent(ctx: Context, tasks: Sequence[LineTask], backend: Backend, config: AgentConfig, *,
              labels: Sequence[str] | None = None, trajectories: str | Path | None = None,
              hook: Progress | None = None) -> dict[int, dict[str, Any]]:
    """Ask about every task's line (backend.concurrency at a time); with `trajectories`,
    lines already in that file are not asked again and new ones are appended."""
    config.check()
    store = TrajectoryLog(trajectories) if trajectories is not None else None
    results: dict[int, dict[str, Any]] = {}
    todo = []
    for task in tasks:
        if store is not None and task.line in store.done:
            results[task.line] = store.done[task.line]
        else:
            todo.append(task)
    named = frozenset(ctx.classes[:-1])
    total, finished = len(tasks), len(results)
    if hook:
        hook("LLM agent", finished, total)

    def one(task: LineTask) -> dict[str, Any]:
        return run_line(ctx, task, backend, config, labels=labels, named=named)

    with ThreadPoolExecutor(max_workers=max(1, backend.concurrency)) as pool:
        futures = {pool.submit(one, task): task for task in todo}
        for future in as_completed(futures):
            trajectory = future.result()
            if store is not None:
                store.append(trajectory)
            results[trajectory["line"]] = trajectory
            finished += 1
            if hook:
                hook("LLM agent", finished, total)
    return results


# ------------------------------------------------------------------------------ hybrid


def record_margin(record: PredictionRecord) -> float:
    """The reasoner's margin: best candidate's score less the runner-up's (1 for a seed;
    2p - 1 for a line the group stage named, p being the group's probability)."""
    evidence = record.evidence or {}
    if evidence.get("seed"):
        return 1.0
    group = evidence.get("group_stage")
    if isinstance(group, dict) and "probability" in group:
        return float(2.0 * group["probability"] - 1.0)
    by_class: dict[str, float] = {}  # a new character and Other are one class to the reasoner
    for name, score in record.candidates or ():
        if score is None or np.isnan(score):
            continue
        key = OTHER if name == OTHER or name.startswith(NEW_CHARACTER_PREFIX) else name
        by_class[key] = max(by_class.get(key, 0.0), float(score))
    scores = sorted(by_class.values(), reverse=True)
    if len(scores) >= 2:
        return float(scores[0] - scores[1])
    return float(scores[0]) if scores else 0.0


def threshold_for_share(records: Sequence[PredictionRecord], share: float) -> float:
    """The margin threshold that sends about `share` of the non-seed lines."""
    margins = np.sort([record_margin(r) for r in records if not (r.evidence and r.evidence.get("seed"))])
    if not len(margins) or share <= 0:
        return 0.0
    k = min(len(margins) - 1, max(0, int(round(share * len(margins)))))
    return float(margins[k])


def line_tasks(ctx: Context, records: Sequence[PredictionRecord], lines: Iterable[int], config: AgentConfig,
               language: prompts.Language) -> list[LineTask]:
    """The candidates of each line: the reasoner's ranking first, then propagation's, named
    characters only, at most config.max_candidates, then Other."""
    other_word = prompts.OTHER_NAME[language]
    named = set(ctx.classes[:-1])
    tasks = []
    for i in lines:
        record = records[i]
        names: list[str] = []
        ranked = [n for n, _ in record.candidates or ()] + [record.speaker] + [
            ctx.classes[k] for k in ctx.candidate_classes(i, top_k=8)]
        for name in ranked:
            if name in named and name not in names:
                names.append(name)
        tasks.append(LineTask(i, (*names[:config.max_candidates], other_word), record.speaker, record_margin(record)))
    return tasks


@dataclass
class HybridResult:
    records: list[PredictionRecord]
    trajectories: dict[int, dict[str, Any]]
    threshold: float
    sent: list[int] = field(default_factory=list)


def hybrid(ctx: Context, records: Sequence[PredictionRecord], backend: Backend, config: AgentConfig, *,
           threshold: float | None = None, share: float | None = None, trajectories: str | Path | None = None,
           hook: Progress | None = None) -> HybridResult:
    """Keep the reasoner's answer where its margin is at least the threshold (or the one
    sending `share` of the lines); ask the LLM about the others. Records come back with the
    LLM's speaker and `evidence.llm` (status, answer, turns, tool calls, fallback)."""
    if len(records) != len(ctx.drama.lines):
        raise DramaError(f"{len(records)} predictions for {len(ctx.drama.lines)} lines", field="records")
    if threshold is None:
        threshold = threshold_for_share(records, share if share is not None else 0.03)
    sent = [r.line for r in records if not (r.evidence and r.evidence.get("seed")) and record_margin(r) < threshold]
    language = drama_language(ctx.drama, config)
    labels = [r.speaker for r in records]
    tasks = line_tasks(ctx, records, sent, config, language)
    results = run_agent(ctx, tasks, backend, config, labels=labels, trajectories=trajectories, hook=hook)
    out = list(records)
    for i, trajectory in results.items():
        record = records[i]
        evidence = dict(record.evidence or {})
        evidence["llm"] = {"model": trajectory["model"], "status": trajectory["status"],
                           "answer": trajectory["answer"], "used_fallback": trajectory["used_fallback"],
                           "turns": len(trajectory["turns"]), "tool_calls": trajectory["tool_calls"],
                           "cpu_speaker": record.speaker, "margin": round(trajectory["margin"], 4)}
        speaker = trajectory["speaker"]
        runner = record.runner_up if speaker == record.speaker else record.speaker
        out[i] = replace(record, speaker=speaker, runner_up=runner, evidence=evidence)
    return HybridResult(out, results, threshold, sent)


def threshold_report(drama: Drama, records: Sequence[PredictionRecord], trajectories: Mapping[int, Mapping[str, Any]],
                     thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Per threshold: share of lines sent, accuracy of the hybrid (LLM answers below it,
    the reasoner's elsewhere; a line without an LLM answer keeps the reasoner's) and of
    the reasoner alone. Thresholds above the run's own reuse only lines it asked about."""
    from dramasr.score import line_correct, scored_mask

    truth = drama.lines.speaker
    scored = scored_mask(truth)
    named = drama.named_characters()
    cpu = [r.speaker for r in records]
    cpu_ok = line_correct(truth, cpu, named)
    margins = np.array([record_margin(r) for r in records])
    seed = np.array([bool(r.evidence and r.evidence.get("seed")) for r in records])
    llm = list(cpu)
    asked = np.zeros(len(records), bool)
    for i, t in trajectories.items():
        llm[i] = t["speaker"]
        asked[i] = True
    llm_ok = line_correct(truth, llm, named)
    rows = []
    n_scored = max(1, int(scored.sum()))
    for thr in thresholds:
        send = (margins < thr) & ~seed
        use = send & asked
        ok = np.where(use, llm_ok, cpu_ok)
        rows.append({"threshold": float(thr), "sent_share": float(send[~seed].mean()) if (~seed).any() else 0.0,
                     "asked": int(use.sum()), "missing": int((send & ~asked).sum()),
                     "hybrid_accuracy": float(ok[scored].sum() / n_scored),
                     "cpu_accuracy": float(cpu_ok[scored].sum() / n_scored)})
    return rows


def summary(trajectories: Iterable[Mapping[str, Any]], seconds: float | None = None) -> dict[str, float]:
    """Lines, valid-first-try share, valid-answer share, tool calls and turns per line."""
    rows = list(trajectories)
    n = max(1, len(rows))
    out = {
        "lines": len(rows),
        "valid_first_try": sum(bool(t["valid_first_try"]) for t in rows) / n,
        "valid_answer": sum(t["answer"] is not None for t in rows) / n,
        "tool_calls_per_line": sum(int(t["tool_calls"]) for t in rows) / n,
        "turns_per_line": sum(len(t["turns"]) for t in rows) / n,
        "fallback_share": sum(bool(t["used_fallback"]) for t in rows) / n,
    }
    if seconds is not None:
        out["lines_per_s"] = len(rows) / seconds if seconds > 0 else 0.0
    return out


def records_from_predictions(predictions: Any) -> list[PredictionRecord]:
    """PredictionRecords from a `Predictions` read from a JSONL file."""
    out = []
    for i, speaker in enumerate(predictions.speaker):
        if speaker is None:
            raise DramaError("no prediction for this line", file=predictions.source, line=i,
                             hint="use the complete output of dramasr attribute")
        conf = float(predictions.confidence[i])
        out.append(PredictionRecord(i, int(predictions.episode[i]), speaker, None if np.isnan(conf) else conf,
                                    predictions.runner_up[i], predictions.candidates[i], predictions.evidence[i]))
    return out


def is_named(label: str, named: frozenset[str]) -> bool:
    return label in named and not label.startswith(NEW_CHARACTER_PREFIX)
