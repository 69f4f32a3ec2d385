"""Reading an LLM agent's replies: the release's tagged protocol (`<think>..</think>`,
`<tool>name()</tool>`, `<answer>name</answer>`) and native JSON (an object with think /
tool / answer, or OpenAI `tool_calls`), and judging each reply against the state of the
conversation (tools already called, the candidates, the voice tool first).

Pure functions: text in, `Reply` / `Problem` out; the wording of corrective messages is
in `dramasr.reason.prompts`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal["tagged", "json"]
PROTOCOLS: tuple[str, ...] = ("tagged", "json")

# Problems a reply can have; the release's ContentErrorType names, plus bad_arguments,
# empty_reply and several_tool_calls for native JSON calls.
PATTERN_NOT_MATCHED = "pattern_not_matched"
MULTIPLE_IDENTIFIER = "multiple_identifier"
NO_THINK = "no_think_identifier"
TOOL_AND_ANSWER = "tool_and_answer"
UNSUPPORTED_TOOL = "unsupported_tool"
BAD_ARGUMENTS = "invalid_parameter_list"
DUPLICATE_CALL = "duplicate_tool_call"
VOICE_NOT_CALLED = "tool_not_called_yet"
NOT_CANDIDATE = "answer_is_not_candidate"
EMPTY_REPLY = "empty_reply"
SEVERAL_CALLS = "several_tool_calls"
PROBLEMS: tuple[str, ...] = (
    PATTERN_NOT_MATCHED, MULTIPLE_IDENTIFIER, NO_THINK, TOOL_AND_ANSWER, UNSUPPORTED_TOOL, BAD_ARGUMENTS,
    DUPLICATE_CALL, VOICE_NOT_CALLED, NOT_CANDIDATE, EMPTY_REPLY, SEVERAL_CALLS,
)
FORMAT_PROBLEMS = frozenset({PATTERN_NOT_MATCHED, MULTIPLE_IDENTIFIER, NO_THINK, TOOL_AND_ANSWER, EMPTY_REPLY,
                             SEVERAL_CALLS})

_TAG = re.compile(r"<(think|tool|answer)>(.*?)</\1>", re.DOTALL)
_CALL = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_NUMBERED = re.compile(r"^\s*\d+\s*[.、:)]\s*")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any]
    call_id: str | None = None

    def key(self) -> str:
        """Identity for duplicate detection: same name and same arguments."""
        return self.name + json.dumps(dict(self.arguments), sort_keys=True, ensure_ascii=False)

    def render(self) -> str:
        args = dict(self.arguments)
        if not args:
            return f"{self.name}()"
        return f"{self.name}({json.dumps(args, ensure_ascii=False, sort_keys=True)})"


@dataclass(frozen=True)
class Reply:
    """One parsed reply: a tool call, an answer, or a format problem (with a detail)."""

    kind: Literal["tool", "answer", "invalid"]
    think: str | None = None
    tool: ToolCall | None = None
    answer: str | None = None
    problem: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "think": self.think}
        if self.tool is not None:
            out["tool"] = {"name": self.tool.name, "arguments": dict(self.tool.arguments)}
        if self.answer is not None:
            out["answer"] = self.answer
        if self.problem is not None:
            out["problem"], out["detail"] = self.problem, self.detail
        return out


def _invalid(problem: str, detail: str = "", think: str | None = None) -> Reply:
    return Reply("invalid", think=think, problem=problem, detail=detail)


def parse_tool_text(text: str) -> ToolCall | None:
    """`name`, `name()`, `name(A, B)` (candidate names) or `name({"line": 3})`; None if not a call."""
    match = _CALL.match(text)
    if not match:
        return None
    name, inner = match.group(1), (match.group(2) or "").strip()
    if not inner:
        return ToolCall(name, {})
    if inner.startswith("{"):
        try:
            args = json.loads(inner)
        except json.JSONDecodeError:
            return ToolCall(name, {"__unparsed__": inner})
        return ToolCall(name, args if isinstance(args, dict) else {"__unparsed__": inner})
    parts = [p.strip().strip("'\"") for p in inner.split(",")]
    return ToolCall(name, {"candidates": [p for p in parts if p]})


def parse_tagged(text: str) -> Reply:
    """A reply in the release's tagged protocol: one <think>, then one <tool> or one <answer>."""
    if not text or not text.strip():
        return _invalid(EMPTY_REPLY)
    found: dict[str, str] = {}
    for match in _TAG.finditer(text):
        key, value = match.group(1), match.group(2).strip()
        if key in found:
            return _invalid(MULTIPLE_IDENTIFIER, key, think=found.get("think"))
        found[key] = value
    if not found:
        return _invalid(PATTERN_NOT_MATCHED)
    think = found.get("think")
    if think is None:
        return _invalid(NO_THINK)
    if ("tool" in found) == ("answer" in found):
        return _invalid(TOOL_AND_ANSWER, think=think)
    if "tool" in found:
        call = parse_tool_text(found["tool"])
        if call is None:
            return _invalid(UNSUPPORTED_TOOL, found["tool"], think=think)
        return Reply("tool", think=think, tool=call)
    return Reply("answer", think=think, answer=found["answer"])


def _json_object(text: str) -> Any:
    """The first JSON object in a text (models often wrap it in ```json fences or prose)."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
            return value
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    return None


def _arguments(raw: Any) -> Mapping[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return {"__unparsed__": raw}
    return raw if isinstance(raw, dict) else {"__unparsed__": raw}


def parse_json(text: str | None, tool_calls: Sequence[Mapping[str, Any]] | None = None) -> Reply:
    """A native JSON reply: OpenAI `tool_calls` on the message, or a text holding
    {"think": ..., "tool": {"name": ..., "arguments": {...}}} or {"think": ..., "answer": ...}."""
    text = text or ""
    if tool_calls:
        if len(tool_calls) > 1:
            return _invalid(SEVERAL_CALLS, str(len(tool_calls)))
        fn = tool_calls[0].get("function") or {}
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            return _invalid(UNSUPPORTED_TOOL, repr(name))
        think = text.strip() or None
        return Reply("tool", think=think, tool=ToolCall(name, _arguments(fn.get("arguments")), tool_calls[0].get("id")))
    if not text.strip():
        return _invalid(EMPTY_REPLY)
    obj = _json_object(text)
    if not isinstance(obj, dict):
        return _invalid(PATTERN_NOT_MATCHED)
    think = obj.get("think")
    think = think if isinstance(think, str) else None
    has_tool, has_answer = obj.get("tool") not in (None, ""), obj.get("answer") not in (None, "")
    if has_tool == has_answer:
        return _invalid(TOOL_AND_ANSWER, think=think)
    if has_answer:
        answer = obj["answer"]
        return Reply("answer", think=think, answer=answer if isinstance(answer, str) else json.dumps(answer))
    tool = obj["tool"]
    if isinstance(tool, str):
        call = parse_tool_text(tool)
        if call is None:
            return _invalid(UNSUPPORTED_TOOL, tool, think=think)
        if "arguments" in obj:
            call = ToolCall(call.name, _arguments(obj["arguments"]))
        return Reply("tool", think=think, tool=call)
    if isinstance(tool, dict) and isinstance(tool.get("name"), str):
        return Reply("tool", think=think, tool=ToolCall(tool["name"], _arguments(tool.get("arguments"))))
    return _invalid(UNSUPPORTED_TOOL, json.dumps(tool, ensure_ascii=False), think=think)


def parse_reply(text: str | None, tool_calls: Sequence[Mapping[str, Any]] | None = None,
                protocol: Protocol = "tagged") -> Reply:
    """Parse with the conversation's protocol; native tool calls are read under either."""
    if tool_calls:
        return parse_json(text, tool_calls)
    if protocol == "json":
        return parse_json(text)
    return parse_tagged(text or "")


def normalise_answer(answer: str) -> str:
    """Strip what models add around a name: quotes, brackets, a list number ("2.江阳")."""
    name = answer.strip().strip("\"'“”‘’「」[]【】*` ").strip()
    return _NUMBERED.sub("", name).strip()


@dataclass
class Conversation:
    """What the judge needs to know about the conversation so far."""

    candidates: Sequence[str]
    other_words: frozenset[str]
    tool_names: frozenset[str]
    voice_tools: frozenset[str] = frozenset({"audio_sim"})
    require_voice: bool = True
    called: list[str] = field(default_factory=list)  # ToolCall.key() of the calls run so far

    def voice_called(self) -> bool:
        return any(key.startswith(name + "{") for key in self.called for name in self.voice_tools)


@dataclass(frozen=True)
class Problem:
    code: str
    detail: str = ""


def judge(reply: Reply, conversation: Conversation) -> Problem | None:
    """None when the reply may be acted on; else the problem a corrective message names.
    (Tool argument errors are found by running the tool, which answers readably.)"""
    if reply.kind == "invalid":
        return Problem(reply.problem or PATTERN_NOT_MATCHED, reply.detail)
    if reply.kind == "tool":
        assert reply.tool is not None
        if reply.tool.name not in conversation.tool_names:
            return Problem(UNSUPPORTED_TOOL, reply.tool.name)
        if "__unparsed__" in reply.tool.arguments:
            return Problem(BAD_ARGUMENTS, reply.tool.name)
        if reply.tool.key() in conversation.called:
            return Problem(DUPLICATE_CALL, reply.tool.render())
        return None
    if conversation.require_voice and not conversation.voice_called():
        return Problem(VOICE_NOT_CALLED, sorted(conversation.voice_tools)[0])
    name = match_candidate(reply.answer or "", conversation.candidates, conversation.other_words)
    if name is None:
        return Problem(NOT_CANDIDATE, reply.answer or "")
    return None


def match_candidate(answer: str, candidates: Iterable[str], other_words: frozenset[str]) -> str | None:
    """The candidate an answer names (exactly, after normalising), or None."""
    name = normalise_answer(answer)
    candidates = list(candidates)
    if name in candidates:
        return name
    if name in other_words:
        for c in candidates:
            if c in other_words:
                return c
    return None
