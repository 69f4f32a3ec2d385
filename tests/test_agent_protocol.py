"""The agent's protocol: tagged and JSON replies parsed and judged; tools called by name
with readable errors; the OpenAI tools JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dramasr.reason import protocol as p
from dramasr.tools import TOOLS, Context, LabelState
from dramasr.tools.calling import ALIASES, OUTPUT_SCHEMA, call_tool, openai_tools, tool_names
from helpers import make_drama

A, B = "江阳", "朱伟"


def _conversation(**kw) -> p.Conversation:
    base = dict(candidates=[A, B, "其他"], other_words=frozenset({"其他", "Other"}),
                tool_names=frozenset(TOOLS) | frozenset(ALIASES))
    base.update(kw)
    return p.Conversation(**base)


# ------------------------------------------------------------------------------ parsing


def test_tagged_tool_and_answer_replies():
    r = p.parse_tagged("<think>声音像江阳</think>\n<tool>audio_sim()</tool>")
    assert r.kind == "tool" and r.tool.name == "audio_sim" and dict(r.tool.arguments) == {}
    assert r.think == "声音像江阳"
    r = p.parse_tagged("<think>ok</think><tool>audio_sim</tool>")
    assert r.kind == "tool" and r.tool.name == "audio_sim"
    r = p.parse_tagged("<think>ok</think><tool>audio_sim(江阳, 朱伟)</tool>")
    assert r.tool.arguments == {"candidates": [A, B]}
    r = p.parse_tagged('<think>ok</think><tool>audio_sim({"line": 3})</tool>')
    assert r.tool.arguments == {"line": 3}
    r = p.parse_tagged("<think>x</think> <answer> 江阳 </answer>")
    assert r.kind == "answer" and r.answer == A


@pytest.mark.parametrize("text, problem", [
    ("", p.EMPTY_REPLY),
    ("江阳", p.PATTERN_NOT_MATCHED),
    ("<think>unclosed <answer>江阳</answer>", p.NO_THINK),
    ("<answer>江阳</answer>", p.NO_THINK),
    ("<think>a</think><think>b</think><answer>江阳</answer>", p.MULTIPLE_IDENTIFIER),
    ("<think>a</think><tool>audio_sim()</tool><answer>江阳</answer>", p.TOOL_AND_ANSWER),
    ("<think>only thinking</think>", p.TOOL_AND_ANSWER),
    ("<think>a</think><tool>audio sim!!</tool>", p.UNSUPPORTED_TOOL),
])
def test_broken_tagged_replies_name_their_problem(text, problem):
    r = p.parse_tagged(text)
    assert r.kind == "invalid" and r.problem == problem


def test_json_replies_text_and_native_tool_calls():
    r = p.parse_json('```json\n{"think": "t", "tool": {"name": "audio_sim", "arguments": {}}}\n```')
    assert r.kind == "tool" and r.tool.name == "audio_sim"
    r = p.parse_json('{"think": "t", "answer": "朱伟"}')
    assert r.kind == "answer" and r.answer == B
    r = p.parse_json('{"think": "t", "tool": "char_relation()"}')
    assert r.kind == "tool" and r.tool.name == "char_relation"
    native = [{"id": "c1", "function": {"name": "audio_sim", "arguments": '{"candidates": ["江阳"]}'}}]
    r = p.parse_reply("", native, "tagged")
    assert r.kind == "tool" and r.tool.arguments == {"candidates": [A]} and r.tool.call_id == "c1"
    two = native + [{"id": "c2", "function": {"name": "char_relation", "arguments": "{}"}}]
    assert p.parse_json("", two).problem == p.SEVERAL_CALLS
    assert p.parse_json("no json here").problem == p.PATTERN_NOT_MATCHED
    assert p.parse_json('{"think": "t"}').problem == p.TOOL_AND_ANSWER
    assert p.parse_json('{"think": "t", "tool": {"name": "a"}, "answer": "b"}').problem == p.TOOL_AND_ANSWER
    bad_args = [{"id": "c", "function": {"name": "audio_sim", "arguments": "{oops"}}]
    assert p.judge(p.parse_json("", bad_args), _conversation()).code == p.BAD_ARGUMENTS


# ------------------------------------------------------------------------------- judging


def test_judge_enforces_voice_first_duplicates_and_candidates():
    conv = _conversation()
    answer = p.parse_tagged("<think>x</think><answer>江阳</answer>")
    assert p.judge(answer, conv).code == p.VOICE_NOT_CALLED
    call = p.parse_tagged("<think>x</think><tool>audio_sim()</tool>")
    assert p.judge(call, conv) is None
    conv.called.append(call.tool.key())
    assert p.judge(call, conv).code == p.DUPLICATE_CALL
    # same tool, other arguments: not a duplicate
    assert p.judge(p.parse_tagged("<think>x</think><tool>audio_sim(江阳)</tool>"), conv) is None
    assert p.judge(answer, conv) is None
    wrong = p.judge(p.parse_tagged("<think>x</think><answer>李四</answer>"), conv)
    assert wrong.code == p.NOT_CANDIDATE and wrong.detail == "李四"
    assert p.judge(p.parse_tagged("<think>x</think><tool>search_web()</tool>"), conv).code == p.UNSUPPORTED_TOOL
    # the release's tool names are accepted
    assert p.judge(p.parse_tagged("<think>x</think><tool>video_cap_detailed()</tool>"), conv) is None


def test_answers_are_matched_after_normalising():
    others = frozenset({"其他", "Other"})
    assert p.match_candidate("2.朱伟", [A, B, "其他"], others) == B
    assert p.match_candidate("「江阳」", [A, B, "其他"], others) == A
    assert p.match_candidate("Other", [A, B, "其他"], others) == "其他"
    assert p.match_candidate("江", [A, B, "其他"], others) is None


# ------------------------------------------------------------------------------- tools


def _ctx():
    drama = make_drama([(1, 0.0, 1.0, A, "你好"), (1, 1.5, 2.5, B, "江阳你来了"), (1, 3.0, 4.0, A, "嗯")],
                       faces=[(1, 0.0, 1.0, A, 0.9), (1, 1.5, 2.5, B, 0.8)])
    state = LabelState([A, B, A], [[A, B], [B, A], [A, B]], [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]],
                       np.array([True, True, False]))
    return Context.build(drama, state, classes=[A, B])


def test_openai_tools_json_is_complete():
    spec = openai_tools()
    json.dumps(spec)  # serialisable
    names = [t["function"]["name"] for t in spec]
    assert names == list(TOOLS)
    for tool in spec:
        params = tool["function"]["parameters"]
        assert set(params["properties"]) == {"line", "candidates"}
        assert params["properties"]["candidates"]["type"] == "array"
        assert params["additionalProperties"] is False
    aliases = openai_tools(["audio_sim", "char_relation", "video_cap_brief", "video_cap_detailed"])
    assert "Alias of the release's video_cap_detailed" in aliases[3]["function"]["description"]
    assert TOOLS["audio_sim"].spec()["output"] == OUTPUT_SCHEMA
    assert {"audio_sim", "char_relation", "video_cap_brief", "video_cap_detailed"} <= set(tool_names())


def test_bad_tool_calls_answer_with_readable_errors():
    ctx = _ctx()
    cases = [
        ("nope", None, "unknown tool 'nope'"),
        ("audio_sim", {"line": 99}, "no line 99: the drama has lines 0 to 2"),
        ("audio_sim", {"line": "x"}, "line must be an integer"),
        ("audio_sim", {"candidates": ["李四"]}, "unknown candidate(s) 李四"),
        ("audio_sim", {"candidates": []}, "non-empty list"),
        ("audio_sim", {"speaker": 1}, "takes no argument speaker"),
        ("audio_sim", "{bad json", "not valid JSON"),
        ("audio_sim", [1, 2], "must be a JSON object"),
    ]
    for name, args, message in cases:
        reply = call_tool(ctx, name, args, line=2)
        assert not reply.ok and message in reply.text, (name, args, reply.text)
        assert reply.to_dict()["error"] == reply.text
    assert "needs a line" in call_tool(ctx, "audio_sim", {}).text


def test_good_calls_and_aliases_return_evidence():
    ctx = _ctx()
    reply = call_tool(ctx, "audio_sim", {"candidates": [A, "Other"]}, line=2)
    assert reply.ok and set(reply.evidence[0].values) == {A, "其他"}
    doc = reply.to_dict()
    assert doc["line"] == 2 and set(doc["values"]) == {A, "其他"}
    detailed = call_tool(ctx, "video_cap_detailed", None, line=1)
    assert detailed.ok and [e.tool for e in detailed.evidence] == ["scene_caption", "faces_on_screen"]
    assert "no scene caption" in detailed.text and "face" in detailed.text
    assert call_tool(ctx, "char_relation", '{"line": "1"}').ok
