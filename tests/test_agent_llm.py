"""The agent with real models: SmolLM2-135M and Gemma 3 270M in-process (llama-cpp-python),
and SmolLM2 behind llama.cpp's OpenAI-compatible server started on loopback by the test
(same answers as in-process at temperature 0; stopped mid-run: the remaining lines keep
the CPU answer, marked). Skips without the `llm` extra.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python (the llm extra) is not installed")

from dramasr.reason import protocol as p  # noqa: E402
from dramasr.reason.agent import AgentConfig, line_tasks, run_agent, run_line  # noqa: E402
from dramasr.reason.backends import HttpBackend, LlamaCppBackend, tiny_model_path  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "llm_replies.json"
N_CTX = 4096
# short prompts and replies keep the tests fast on 2 cores
CONFIG = AgentConfig(context_lines=2, max_tokens=80, think_chars=12, max_turns=3,
                     tools=("audio_sim", "video_cap_detailed"))
LINE = 21


def _model(name: str) -> Path:
    try:
        return tiny_model_path(name)
    except Exception as exc:  # noqa: BLE001 - a missing package is a skip, not a failure
        pytest.skip(f"{name} is not installed: {exc}")


@pytest.fixture(scope="module")
def smollm2():
    return LlamaCppBackend(_model("smollm2"), n_ctx=N_CTX, n_threads=1)


def _check(trajectory, tasks_by_line):
    task = tasks_by_line[trajectory["line"]]
    assert trajectory["status"] in ("answered", "max_turns")
    for turn in trajectory["turns"]:  # the grammar keeps every reply inside the protocol
        problem = turn.get("problem", {}).get("code")
        assert problem not in p.FORMAT_PROBLEMS, turn
        assert turn["parsed"]["kind"] in ("tool", "answer")
    if trajectory["answer"] is not None:
        assert trajectory["answer"] in task.candidates
    else:
        assert trajectory["used_fallback"] and trajectory["speaker"] == task.fallback


@pytest.fixture(scope="module")
def local_run(small, smollm2):
    _, ctx, records = small
    tasks = line_tasks(ctx, records, [LINE], CONFIG, "zh")
    return tasks, run_agent(ctx, tasks, smollm2, CONFIG)


def test_smollm2_in_process_with_grammar(local_run):
    tasks, results = local_run
    _check(results[LINE], {task.line: task for task in tasks})
    assert results[LINE]["turns"][0]["content"].startswith("<think>")


def test_gemma3_in_process_json_protocol(small):
    _, ctx, records = small
    backend = LlamaCppBackend(_model("gemma3-270m"), n_ctx=N_CTX, n_threads=1)
    config = AgentConfig(**{**CONFIG.__dict__, "protocol": "json"})
    task = line_tasks(ctx, records, [LINE], config, "zh")[0]
    t = run_line(ctx, task, backend, config)
    _check(t, {task.line: task})
    assert t["turns"][0]["content"].startswith('{"think": "')


def test_real_replies_without_grammar_parse_as_recorded():
    """Replies the tiny models wrote without a grammar (tests/fixtures), parsed as they were
    when recorded: most break the protocol, which is what the corrections are for."""
    fixtures = json.loads(FIXTURES.read_text(encoding="utf-8"))
    assert len(fixtures) >= 4
    for item in fixtures:
        reply = p.parse_reply(item["content"], None, item["protocol"])
        assert reply.kind == item["kind"] and reply.problem == item.get("problem"), item


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    model = _model("smollm2")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", str(N_CTX), "--n_threads", "1", "--n_threads_batch", "1", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("llama_cpp.server did not start")
            time.sleep(0.5)
    yield proc, base
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_http_server_matches_in_process_then_fails_over_when_stopped(small, local_run, server):
    _, ctx, records = small
    proc, base = server
    tasks, local = local_run
    http = HttpBackend(base, "smollm2", grammar=True, concurrency=1, retries=1, backoff_s=0.1, timeout_s=120)
    over_http = run_agent(ctx, tasks, http, CONFIG)
    # temperature 0: the same replies, turn by turn
    assert [t["content"] for t in over_http[LINE]["turns"]] == [t["content"] for t in local[LINE]["turns"]]
    assert over_http[LINE]["speaker"] == local[LINE]["speaker"]
    # a time-out shorter than any reply
    hurried = HttpBackend(base, "smollm2", grammar=True, retries=0, timeout_s=0.01)
    t = run_line(ctx, tasks[0], hurried, CONFIG)
    assert t["status"] == "timeout" and t["used_fallback"] and t["speaker"] == tasks[0].fallback

    # stopped mid-run: the server goes down as the second conversation starts
    class StopsMidRun:
        name, concurrency, reads_grammar = http.name, 1, True
        conversations = 0

        def complete(self, request):
            if len(request.messages) == 2:
                self.conversations += 1
                if self.conversations == 2:
                    proc.terminate()
                    proc.wait(10)
            return http.complete(request)

    more = line_tasks(ctx, records, [LINE, LINE + 1], CONFIG, "zh")
    results = run_agent(ctx, more, StopsMidRun(), CONFIG)
    assert results[LINE]["status"] in ("answered", "max_turns")
    second = results[LINE + 1]
    assert second["status"] == "connection" and second["used_fallback"] and second["speaker"] == more[1].fallback
    assert "127.0.0.1" in second["error"]
