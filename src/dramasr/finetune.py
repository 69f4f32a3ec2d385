"""Fine-tuning data for an LLM speaker agent, from the training dramas, and the release's
reward: SFT conversations (LLaMA-Factory sharegpt JSON) whose tool results are the tools'
real outputs and whose answers are the truth, and RL prompts (verl-style parquet) that a
trainer rolls out and scores with `reward`.

The SFT thoughts are short templates (no teacher LLM writes them here): they say which
evidence was read and what it pointed to; the tool outputs and the answers are real.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dramasr.data.model import DELETED_MARK, OTHER, Drama
from dramasr.errors import DramaError
from dramasr.reason import prompts
from dramasr.reason import protocol as p
from dramasr.reason.agent import AgentConfig, LineTask, drama_language, initial_messages
from dramasr.tools.base import Context
from dramasr.tools.calling import call_tool

DATA_SOURCE = "speaker_recognition"  # the release's data_source / toolset name
PENALTY_TURNS = 0.01  # release main.py --rl_penalty_length
PENALTY_DUPLICATE = 0.1  # release main.py --rl_penalty_duplicate
FREE_TURNS = 2


def reward(replies: Sequence[str], ground_truth: Mapping[str, Any], *, penalty_turns: float = PENALTY_TURNS,
           penalty_duplicate: float = PENALTY_DUPLICATE) -> float:
    """The release's rule-based reward of one rollout (its assistant replies, in order):
    -1 unless exactly one answer was given; else correct (1/0) - penalty_turns x
    max(0, turns - 2) - penalty_duplicate x repeated tool calls. Correct: the answer is
    the true character, or the truth is Other and the answer is not a named candidate.
    ground_truth: {"character_gt", "candidate_list", "name_others"} as in the RL parquet."""
    answers: list[str] = []
    seen: set[str] = set()
    duplicates = 0
    for text in replies:
        for match in p._TAG.finditer(text or ""):
            key, value = match.group(1), match.group(2).strip()
            if key == "tool":
                duplicates += value in seen
                seen.add(value)
            elif key == "answer":
                answers.append(value)
    if len(answers) != 1:
        return -1.0
    answer = answers[0]
    truth = ground_truth["character_gt"]
    named = [c for c in ground_truth["candidate_list"] if c != ground_truth["name_others"]]
    correct = answer == truth or (truth == ground_truth["name_others"] and answer not in named)
    return float(correct) - penalty_turns * max(0, len(replies) - FREE_TURNS) - penalty_duplicate * duplicates


@dataclass(frozen=True)
class Sample:
    line: int
    kind: str  # wrong / close / low / confident (the release's sample types)
    task: LineTask
    truth: str  # the candidate to answer: the true name, or Other when it is not a named candidate


def choose_samples(ctx: Context, *, limit: int, confident_share: float = 0.1, seed: int = 0,
                   close: float = 0.03, low: float = 0.45, config: AgentConfig | None = None) -> list[Sample]:
    """Lines to train on, as the release samples them: every line propagation got wrong or
    was unsure of (top score below `low`, or within `close` of the runner-up), and
    `confident_share` of the rest; at most `limit` (a seeded random subset)."""
    config = config or AgentConfig()
    drama, state = ctx.drama, ctx.state
    language = drama_language(drama, config)
    other_word = prompts.OTHER_NAME[language]
    named = set(ctx.classes[:-1])
    rng = np.random.default_rng(seed)
    picked: list[tuple[int, str]] = []
    for i, truth in enumerate(drama.lines.speaker):
        if not truth or DELETED_MARK in truth or state.is_seed[i]:
            continue
        scores = state.scores[i]
        top = scores[0] if scores else 0.0
        margin = top - scores[1] if len(scores) > 1 else top
        if state.label[i] != truth:
            kind = "wrong"
        elif margin < close:
            kind = "close"
        elif top < low:
            kind = "low"
        elif rng.random() < confident_share:
            kind = "confident"
        else:
            continue
        picked.append((i, kind))
    if len(picked) > limit:
        keep = np.sort(rng.choice(len(picked), size=limit, replace=False))
        picked = [picked[k] for k in keep]
    samples = []
    for i, kind in picked:
        names = [n for n in state.candidates[i] if n in named][:config.max_candidates]
        candidates = (*dict.fromkeys(names), other_word)
        truth = drama.lines.speaker[i]
        answer = truth if truth in candidates[:-1] else other_word
        scores = state.scores[i]
        margin = float(scores[0] - scores[1]) if len(scores) > 1 else float(scores[0] if scores else 0.0)
        samples.append(Sample(i, kind, LineTask(i, candidates, state.label[i], margin), answer))
    return samples


def _think(language: str, step: str, **kw: str) -> str:
    zh = {
        "start": "先看声纹：调用audio_sim比较这句台词与各候选人的声音。",
        "voice_agrees": "声纹与{name}最接近，上下文也没有矛盾，答案是{name}。",
        "look": "声纹最接近的是{top}，但还不够确定；看看台词前后画面上有谁。",
        "decide": "综合声纹、画面和上下文，说话人应是{name}。",
    }
    en = {
        "start": "First the voice: call audio_sim to compare this line's voice with each candidate.",
        "voice_agrees": "The voice is closest to {name} and the context agrees: {name}.",
        "look": "The voice is closest to {top}, but that is not certain; check who is on screen around the line.",
        "decide": "Weighing voice, screen and dialogue, the speaker is {name}.",
    }
    return (zh if language == "zh" else en)[step].format(**kw)


def sft_conversation(ctx: Context, sample: Sample, config: AgentConfig) -> list[dict[str, str]]:
    """One teaching conversation: the agent's real prompt, real tool outputs, the true answer."""
    language = drama_language(ctx.drama, config)
    messages = initial_messages(ctx, sample.task, ctx.state.label, config, language)
    tool_candidates = [OTHER if c == prompts.OTHER_NAME[language] else c for c in sample.task.candidates]
    called: list[str] = []

    def ask(tool: str, think: str) -> str:
        """Call `tool` as the agent would; the candidate its voice similarity ranks first."""
        messages.append({"role": "assistant", "content": f"<think>{think}</think><tool>{tool}()</tool>"})
        reply = call_tool(ctx, tool, {}, line=sample.line, candidates=tool_candidates)
        called.append(tool)
        note = prompts.called_note(language, called)
        messages.append({"role": "user", "content": prompts.tool_result(language, tool, reply.text, reply.ok)
                         + "\n" + note})
        sims = {name: vals.get("audio_top", 0.0) for ev in reply.evidence for name, vals in ev.values.items()}
        return max(sims, key=lambda name: sims[name]) if sims else ""

    top = ask("audio_sim", _think(language, "start"))
    shown_top = prompts.OTHER_NAME[language] if top == OTHER else top
    if shown_top == sample.truth:
        think = _think(language, "voice_agrees", name=sample.truth)
    else:
        ask("faces_on_screen", _think(language, "look", top=shown_top))
        think = _think(language, "decide", name=sample.truth)
    messages.append({"role": "assistant", "content": f"<think>{think}</think><answer>{sample.truth}</answer>"})
    return messages


def sharegpt_record(messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """LLaMA-Factory's sharegpt layout: system apart, human/gpt turns alternating."""
    roles = {"user": "human", "assistant": "gpt"}
    return {"system": messages[0]["content"],
            "conversations": [{"from": roles[m["role"]], "value": m["content"]} for m in messages[1:]]}


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the data is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_sft(dramas: Sequence[tuple[Drama, Context]], output: str | Path, *, limit: int = 2000, seed: int = 0,
               config: AgentConfig | None = None) -> dict[str, Any]:
    """Write sharegpt JSON and, beside it, LLaMA-Factory's dataset_info.json."""
    config = config or AgentConfig()
    output = Path(output)
    records = []
    kinds: dict[str, int] = {}
    per_drama = max(1, limit // max(1, len(dramas)))
    for _drama, ctx in dramas:
        for sample in choose_samples(ctx, limit=per_drama, seed=seed, config=config):
            records.append(sharegpt_record(sft_conversation(ctx, sample, config)))
            kinds[sample.kind] = kinds.get(sample.kind, 0) + 1
    if not records:
        raise DramaError("no line to export (no truth, or every line is a seed)", field="--drama")

    def write_json(tmp: Path) -> None:
        tmp.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")

    _atomic_write(output, write_json)
    info = {output.stem: {"file_name": output.name, "formatting": "sharegpt",
                          "columns": {"messages": "conversations", "system": "system"},
                          "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                                   "assistant_tag": "gpt"}}}
    info_path = output.parent / "dataset_info.json"
    _atomic_write(info_path, lambda tmp: tmp.write_text(json.dumps(info, indent=1), encoding="utf-8"))
    return {"file": str(output), "dataset_info": str(info_path), "conversations": len(records), "kinds": kinds}


def export_rl(dramas: Sequence[tuple[Drama, Context]], output: str | Path, *, limit: int = 2000, seed: int = 0,
              validation_share: float = 0.05, config: AgentConfig | None = None) -> dict[str, Any]:
    """Write verl-style parquet (data_source, prompt, ability, reward_model, extra_info):
    OUTPUT (training) and OUTPUT with `_val` before the suffix (validation)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise DramaError("pyarrow is not installed", field="export-rl", hint='pip install -e ".[llm]"') from None
    config = config or AgentConfig()
    output = Path(output)
    rows = []
    per_drama = max(1, limit // max(1, len(dramas)))
    for drama, ctx in dramas:
        language = drama_language(drama, config)
        for sample in choose_samples(ctx, limit=per_drama, seed=seed, config=config):
            messages = initial_messages(ctx, sample.task, ctx.state.label, config, language)
            rows.append({
                "data_source": DATA_SOURCE,
                "prompt": [{"role": m["role"], "content": m["content"]} for m in messages],
                "ability": "speaker_recognition",
                "reward_model": {"style": "rule", "ground_truth": {
                    "character_gt": sample.truth, "candidate_list": list(sample.task.candidates),
                    "name_others": prompts.OTHER_NAME[language]}},
                "extra_info": {"drama_name": drama.name, "subtitle_idx": sample.line, "sample_type": sample.kind},
            })
    if not rows:
        raise DramaError("no line to export (no truth, or every line is a seed)", field="--drama")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(len(rows) * validation_share))) if len(rows) > 1 else 0
    val_idx = set(rng.choice(len(rows), size=n_val, replace=False).tolist()) if n_val else set()
    train = [r for k, r in enumerate(rows) if k not in val_idx]
    val = [r for k, r in enumerate(rows) if k in val_idx]
    val_path = output.with_name(output.stem + "_val" + output.suffix)
    for path, part in ((output, train), (val_path, val)):
        table = pa.Table.from_pylist(part)
        _atomic_write(path, lambda tmp, table=table: pq.write_table(table, tmp))
    return {"train": str(output), "validation": str(val_path), "train_rows": len(train), "validation_rows": len(val)}


def training_contexts(dramas: Sequence[Drama], seeds: str = "1pct") -> list[tuple[Drama, Context]]:
    """Each training drama with its propagation labels (what the release's data curation reads)."""
    from dramasr.attribute import propagate_labels

    out = []
    for drama in dramas:
        if not any(drama.lines.speaker):
            raise DramaError("this drama has no ground truth to build training data from", file=drama.source)
        out.append((drama, Context.build(drama, propagate_labels(drama, seeds))))
    return out
