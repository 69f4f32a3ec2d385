"""Calling the evidence tools by name, as an LLM agent does: complete input/output schemas,
the release's tool names as aliases, OpenAI `tools` JSON, and bad calls answered with a
readable error (a string the model can act on) instead of an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dramasr.data.model import OTHER
from dramasr.errors import DramaError
from dramasr.tools.base import Context, Evidence, Tool

# The release's LRM toolset (large_reasoning_model/toolset.py) names -> ours. Its two video
# caption tools read captions we rarely have; what was on screen is the closest evidence we
# hold for the detailed (5-10 s) one, so it answers with the caption and the faces.
ALIASES: dict[str, tuple[str, ...]] = {
    "video_cap_brief": ("scene_caption",),
    "video_cap_detailed": ("scene_caption", "faces_on_screen"),
}
# the words for "not a named character" a model may answer with
OTHER_WORDS = frozenset({OTHER, "Other", "other", "OTHER", "其它"})

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What the tool found: per-candidate values and a short readable text; or an error.",
    "properties": {
        "tool": {"type": "string"},
        "line": {"type": "integer"},
        "values": {
            "type": "object",
            "description": "candidate name -> feature name -> number",
            "additionalProperties": {"type": "object", "additionalProperties": {"type": "number"}},
        },
        "text": {"type": "string", "description": "the evidence in one or two sentences"},
        "error": {"type": "string", "description": "present instead of values when the call was invalid"},
    },
    "required": ["tool", "text"],
}


def input_schema(tool: Tool) -> dict[str, Any]:
    """The tool's input schema, completed with the optional `candidates` argument `call` takes."""
    schema = json.loads(json.dumps(tool.input_schema))
    props = schema.setdefault("properties", {})
    props.setdefault("line", {"type": "integer", "minimum": 0, "description": "global index of the subtitle line"})
    props.setdefault("candidates", {
        "type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True,
        "description": f"character names to score (default: the line's candidates plus {OTHER})",
    })
    schema["additionalProperties"] = False
    return schema


@dataclass
class ToolReply:
    """The answer to one call: ok with Evidence, or an error text for the model."""

    tool: str
    ok: bool
    text: str
    evidence: list[Evidence] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"tool": self.tool, "error": self.text, "text": self.text}
        values: dict[str, dict[str, float]] = {}
        for ev in self.evidence:
            for name, vals in ev.values.items():
                values.setdefault(name, {}).update({k: round(v, 4) for k, v in vals.items()})
        line = self.evidence[0].line if self.evidence else -1
        return {"tool": self.tool, "line": line, "values": values, "text": self.text}


def registry() -> dict[str, Tool]:
    from dramasr.tools import TOOLS

    return TOOLS


def resolve(name: str, tools: Mapping[str, Tool] | None = None) -> list[Tool] | None:
    """The tool(s) a name stands for (a release alias may stand for two), or None."""
    tools = registry() if tools is None else tools
    if name in tools:
        return [tools[name]]
    if name in ALIASES and all(n in tools for n in ALIASES[name]):
        return [tools[n] for n in ALIASES[name]]
    return None


def tool_names(tools: Mapping[str, Tool] | None = None, *, aliases: bool = True) -> list[str]:
    tools = registry() if tools is None else tools
    names = list(tools)
    if aliases:
        names += [a for a, targets in ALIASES.items() if all(t in tools for t in targets)]
    return names


def openai_tools(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The tools as an OpenAI chat-completions `tools` list (function specs)."""
    tools = registry()
    out = []
    for name in names if names is not None else list(tools):
        resolved = resolve(name, tools)
        if resolved is None:
            raise DramaError(f"unknown tool {name!r}", field="tools", hint="choose from " + ", ".join(tool_names()))
        if len(resolved) == 1 and resolved[0].name == name:
            description, schema = resolved[0].description, input_schema(resolved[0])
        else:
            description = f"Alias of the release's {name}: " + " Then: ".join(t.description for t in resolved)
            schema = input_schema(resolved[0])
        out.append({"type": "function", "function": {"name": name, "description": description, "parameters": schema}})
    return out


def call_tool(ctx: Context, name: str, arguments: Any = None, *, line: int | None = None,
              candidates: Sequence[str] | None = None) -> ToolReply:
    """Run tool `name` with `arguments` (a dict, a JSON string, or None); `line` and
    `candidates` are the defaults when the arguments leave them out. Never raises for a bad
    call: the reply carries an error text naming what was wrong and what is allowed."""
    resolved = resolve(name)
    if resolved is None:
        return ToolReply(name, False, f"unknown tool {name!r}; the tools are: {', '.join(tool_names())}")
    if isinstance(arguments, str):
        text = arguments.strip()
        try:
            arguments = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            return ToolReply(name, False, f"arguments of {name} are not valid JSON ({exc.msg}); give an object "
                                          'such as {"line": 12}')
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        return ToolReply(name, False, f"arguments of {name} must be a JSON object, not {type(arguments).__name__}")
    allowed = set(input_schema(resolved[0])["properties"])
    extra = sorted(set(arguments) - allowed)
    if extra:
        return ToolReply(name, False,
                         f"{name} takes no argument {', '.join(extra)}; it takes: {', '.join(sorted(allowed))}")
    n_lines = len(ctx.drama.lines)
    target = arguments.get("line", line)
    if target is None:
        return ToolReply(name, False, f"{name} needs a line: give \"line\" (0 to {n_lines - 1})")
    if isinstance(target, bool) or not isinstance(target, int):
        if isinstance(target, str) and target.strip().lstrip("-").isdigit():
            target = int(target.strip())
        else:
            return ToolReply(name, False, f"line must be an integer, not {target!r}")
    if not 0 <= target < n_lines:
        return ToolReply(name, False, f"no line {target}: the drama has lines 0 to {n_lines - 1}")
    asked = arguments.get("candidates", candidates)
    names: list[str] | None = None
    if asked is not None:
        if isinstance(asked, str):
            asked = [part.strip() for part in asked.split(",") if part.strip()]
        if not isinstance(asked, list) or not asked or not all(isinstance(a, str) for a in asked):
            return ToolReply(name, False, "candidates must be a non-empty list of character names")
        names = []
        unknown = []
        for a in asked:
            canonical = ctx.classes[ctx.other] if a in OTHER_WORDS else a
            if canonical not in ctx.class_of:
                unknown.append(a)
            elif canonical not in names:
                names.append(canonical)
        if unknown:
            known = ", ".join(ctx.classes[:12]) + (" ..." if len(ctx.classes) > 12 else "")
            return ToolReply(name, False, f"unknown candidate(s) {', '.join(unknown)}; names the drama knows: {known}")
    evidence: list[Evidence] = []
    try:
        for tool in resolved:
            evidence.append(tool.call(ctx, target, names))
    except DramaError as exc:
        return ToolReply(name, False, f"{name} could not run: {exc.reason}")
    return ToolReply(name, True, " | ".join(ev.text for ev in evidence), evidence)
