"""The agent loop on a small synthetic drama: each corrective path, the CPU fallback,
trajectories saved, resumed and replayed, the on-disk cache, the hybrid report.
Real models: tests/test_agent_llm.py."""

from __future__ import annotations

import json

import pytest

from dramasr.reason import protocol as p
from dramasr.reason.agent import (
    AgentConfig,
    TrajectoryLog,
    hybrid,
    line_tasks,
    read_trajectories,
    record_margin,
    replay,
    reply_grammar,
    run_agent,
    run_line,
    summary,
    threshold_for_share,
    threshold_report,
)
from dramasr.reason.backends import BackendError, CachedBackend, ChatReply, ChatRequest
from dramasr.synth import synth_drama


class Scripted:
    """A backend that answers from a list (one reply per request), for the loop's paths."""

    name = "scripted"
    concurrency = 1
    reads_grammar = False

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[ChatRequest] = []

    def complete(self, request):
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else "<think>?</think><answer>nobody</answer>"
        if isinstance(reply, Exception):
            raise reply
        return ChatReply(reply) if isinstance(reply, str) else reply


SHORT = AgentConfig(context_lines=3)


def _task(ctx, records, line=20, config=SHORT):
    return line_tasks(ctx, records, [line], config, "zh")[0]


def test_prompt_shows_context_candidates_and_marks_the_target(small):
    drama, ctx, records = small
    config = AgentConfig(context_lines=3)
    task = _task(ctx, records, 59, config)  # last line of episode 1: the border is shown
    backend = Scripted(["<think>a</think><tool>audio_sim()</tool>",
                        f"<think>b</think><answer>{task.candidates[0]}</answer>"])
    t = run_line(ctx, task, backend, config)
    user = t["messages"][1]["content"]
    assert "[4] 未知:" in user and "下一集" in user and "请判断第[4]句" in user
    assert all(f"{k}. {name}" in user for k, name in enumerate(task.candidates, 1))
    assert task.candidates[-1] == "其他"
    assert t["status"] == "answered" and t["answer"] == task.candidates[0] and t["valid_first_try"]
    assert t["tool_calls"] == 1 and t["turns"][0]["tool_result"]["values"]


@pytest.mark.parametrize("bad, code", [
    ("no tags at all", p.PATTERN_NOT_MATCHED),
    ("<think>a</think><tool>audio_sim()</tool><answer>x</answer>", p.TOOL_AND_ANSWER),
    ("<think>a</think><tool>web_search()</tool>", p.UNSUPPORTED_TOOL),
    ("<think>a</think><answer>CANDIDATE</answer>", p.VOICE_NOT_CALLED),
])
def test_each_bad_reply_gets_a_correction_and_the_loop_goes_on(small, bad, code):
    _, ctx, records = small
    task = _task(ctx, records)
    bad = bad.replace("CANDIDATE", task.candidates[0])
    backend = Scripted([bad, "<think>a</think><tool>audio_sim()</tool>",
                        f"<think>b</think><answer>{task.candidates[1]}</answer>"])
    t = run_line(ctx, task, backend, AgentConfig(context_lines=3))
    assert t["turns"][0]["problem"]["code"] == code and not t["valid_first_try"]
    assert t["messages"][3]["role"] == "user" and "无效" in t["messages"][3]["content"]
    assert t["status"] == "answered" and t["answer"] == task.candidates[1] and t["corrections"] == 1


def test_duplicate_call_and_answer_outside_candidates_are_corrected(small):
    _, ctx, records = small
    task = _task(ctx, records)
    backend = Scripted(["<think>a</think><tool>audio_sim()</tool>", "<think>a</think><tool>audio_sim()</tool>",
                        "<think>a</think><answer>王大锤</answer>", "<think>a</think><answer>Other</answer>"])
    t = run_line(ctx, task, backend, AgentConfig(context_lines=3))
    codes = [turn.get("problem", {}).get("code") for turn in t["turns"]]
    assert codes == [None, p.DUPLICATE_CALL, p.NOT_CANDIDATE, None]
    assert t["duplicate_calls"] == 1 and "王大锤" in t["messages"][7]["content"]
    assert t["answer"] == "其他" and t["status"] == "answered"


def test_max_turns_and_server_errors_keep_the_cpu_answer(small):
    _, ctx, records = small
    task = _task(ctx, records)
    t = run_line(ctx, task, Scripted([f"junk {k}" for k in range(5)]), AgentConfig(context_lines=3, max_turns=3))
    assert t["status"] == "max_turns" and t["used_fallback"] and t["speaker"] == task.fallback
    assert len(t["turns"]) == 3
    t = run_line(ctx, task, Scripted([BackendError("timeout", "no reply within 1 s")]), AgentConfig(context_lines=3))
    assert t["status"] == "timeout" and t["used_fallback"] and t["speaker"] == task.fallback and "1 s" in t["error"]


def test_grammar_lists_tools_and_candidates():
    g = reply_grammar(AgentConfig(tools=("audio_sim",), think_chars=50), ["江阳", '引"号', "其他"])
    assert '"audio_sim"' in g and '"江阳"' in g and '"引\\"号"' in g and "{0,50}" in g
    assert '\\"answer\\"' in reply_grammar(AgentConfig(protocol="json"), ["A"])


def test_trajectories_resume_after_a_kill_without_loss_or_duplicates(small, tmp_path):
    _, ctx, records = small
    config = AgentConfig(context_lines=2)
    tasks = line_tasks(ctx, records, [10, 11, 12, 13], config, "zh")

    def good(task):
        return ["<think>a</think><tool>audio_sim()</tool>", f"<think>b</think><answer>{task.candidates[0]}</answer>"]

    path = tmp_path / "traj.jsonl"
    first = run_agent(ctx, tasks[:2], Scripted(good(tasks[0]) + good(tasks[1])), config, trajectories=path)
    assert sorted(first) == [10, 11]
    # a run killed while writing its third row leaves half a JSON line
    with path.open("ab") as fh:
        fh.write(b'{"line": 12, "drama": "sm')
    backend = Scripted(good(tasks[2]) + good(tasks[3]))
    second = run_agent(ctx, tasks, backend, config, trajectories=path)
    assert sorted(second) == [10, 11, 12, 13] and len(backend.requests) == 4  # only 12 and 13 asked
    rows = [json.loads(r) for r in path.read_text().splitlines()]
    assert sorted(r["line"] for r in rows) == [10, 11, 12, 13]
    assert sorted(t["line"] for t in read_trajectories(path)) == [10, 11, 12, 13]
    assert len(TrajectoryLog(path).done) == 4
    # replay: the saved replies and re-run tools end as saved
    for row in rows:
        again = replay(ctx, row)
        assert again["speaker"] == row["speaker"] and again["turns"] == row["turns"]


def test_identical_requests_are_answered_from_the_disk_cache(small, tmp_path):
    _, ctx, records = small
    task = _task(ctx, records)
    replies = ["<think>a</think><tool>audio_sim()</tool>", f"<think>b</think><answer>{task.candidates[0]}</answer>"]
    cached = CachedBackend(Scripted(replies), tmp_path / "cache")
    one = run_line(ctx, task, cached, AgentConfig(context_lines=3))
    assert (cached.hits, cached.misses) == (0, 2)
    cached2 = CachedBackend(Scripted([]), tmp_path / "cache")  # would answer "nobody" if asked
    two = run_line(ctx, task, cached2, AgentConfig(context_lines=3))
    assert (cached2.hits, cached2.misses) == (2, 0)
    assert two["answer"] == one["answer"] and all(t["cached"] for t in two["turns"])


def test_hybrid_sends_low_margin_lines_and_reports_per_threshold(small):
    drama, ctx, records = small
    threshold = threshold_for_share(records, 0.1)
    sent = [r.line for r in records if record_margin(r) < threshold and not (r.evidence or {}).get("seed")]
    assert 0 < len(sent) < len(records) // 5

    replies = []  # the truth where it is a candidate: the hybrid must not lose
    for task in line_tasks(ctx, records, sent, AgentConfig(), "zh"):
        truth = drama.lines.speaker[task.line]
        answer = truth if truth in task.candidates else "其他"
        replies += ["<think>a</think><tool>audio_sim()</tool>", f"<think>b</think><answer>{answer}</answer>"]
    result = hybrid(ctx, records, Scripted(replies), AgentConfig(), threshold=threshold)
    assert result.sent == sent and len(result.trajectories) == len(sent)
    changed = [r for r in result.records if r.evidence and "llm" in r.evidence]
    assert len(changed) == len(sent) and all(r.evidence["llm"]["status"] == "answered" for r in changed)
    rows = threshold_report(drama, records, result.trajectories, [0.0, threshold])
    assert rows[0]["sent_share"] == 0 and rows[0]["hybrid_accuracy"] == rows[0]["cpu_accuracy"]
    assert rows[1]["asked"] == len(sent) and rows[1]["hybrid_accuracy"] >= rows[1]["cpu_accuracy"]
    stats = summary(result.trajectories.values(), 1.0)
    assert stats["valid_answer"] == 1.0 and stats["tool_calls_per_line"] == 1.0


def test_cli_agent_rejects_bad_options_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from dramasr.agent_cli import parse_lines
    from dramasr.cli import app
    from dramasr.data import save_drama

    drama = synth_drama(seed=1, episodes=2, lines_per_episode=30, name="cli_small")
    save_drama(drama, tmp_path / "d")
    assert parse_lines("2:0-2", drama) == [30, 31, 32] and parse_lines("7", drama) == [7]
    runner = CliRunner()
    cases = {
        ("--llm", "ftp://x", "--line", "3"): "cannot read --llm",
        ("--llm", "gguf:/nowhere/m.gguf", "--line", "3"): "--llm",
        ("--llm", "http://127.0.0.1:9/v1", "--line", "3:0"): "no episode 3",
        ("--llm", "http://127.0.0.1:9/v1", "--line", "1:40"): "episode 1 has lines 0..29",
        ("--llm", "http://127.0.0.1:9/v1", "--line", "x"): "cannot read --line",
        ("--llm", "http://127.0.0.1:9/v1", "--line", "1", "--protocol", "xml"): "unknown protocol",
        ("--line", "1"): "give --llm and --line",
    }
    for args, message in cases.items():
        result = runner.invoke(app, ["agent", str(tmp_path / "d"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_a_repeated_rejected_reply_ends_the_conversation(small):
    _, ctx, records = small
    task = _task(ctx, records)
    t = run_line(ctx, task, Scripted(["junk", "junk", "junk"]), AgentConfig(context_lines=3))
    assert t["status"] == "repeated" and len(t["turns"]) == 2 and t["speaker"] == task.fallback


def test_grammar_leaves_room_for_the_tags():
    assert "{0,100}" in reply_grammar(AgentConfig(think_chars=100, max_tokens=512), ["A"])
    assert "{0,10}" in reply_grammar(AgentConfig(think_chars=100, max_tokens=80), ["A"])


def test_grammar_follows_the_conversation():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (the llm extra) is not installed")
    from llama_cpp import LlamaGrammar

    config = AgentConfig(tools=("audio_sim", "char_relation"))
    for protocol in ("tagged", "json"):
        cfg = AgentConfig(**{**config.__dict__, "protocol": protocol})
        first = reply_grammar(cfg, ["江阳", "其他"])  # no answer before the voice tool
        assert "cand" not in first.split("\n")[0] and '"audio_sim"' in first
        middle = reply_grammar(cfg, ["江阳", "其他"], ["audio_sim"])  # a new tool, or the answer
        assert '"audio_sim"' not in middle and '"char_relation"' in middle
        last = reply_grammar(cfg, ["江阳", "其他"], ["audio_sim", "char_relation"])  # only the answer
        assert "name ::=" not in last
        for text in (first, middle, last):
            LlamaGrammar.from_string(text, verbose=False)  # llama.cpp accepts it


def test_grammar_forces_the_voice_tool_then_an_answer_at_the_end():
    config = AgentConfig(tools=("audio_sim", "char_relation"))
    voice = reply_grammar(config, ["江阳", "其他"], ["char_relation"], turns_left=2)
    assert 'name ::= "audio_sim"\n' in voice and "<answer>" not in voice.split("\n")[0]
    last = reply_grammar(config, ["江阳", "其他"], [], turns_left=1)
    assert "<tool>" not in last and "name ::=" not in last and "<answer>" in last
