"""The words the LLM agent reads, in Chinese and English (the drama's language decides):
system prompt per protocol, the line in its context, tool results and corrective messages.

Written for dramasr; the conversation shape (think / one tool per turn / answer, the voice
tool before any answer, corrections instead of failures) follows the paper's release.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from dramasr.reason import protocol as p

Language = Literal["zh", "en"]
LANGUAGES: tuple[str, ...] = ("zh", "en")
RULE = "=" * 16
_CJK = re.compile(r"[\u4e00-\u9fff]")

UNKNOWN = {"zh": "未知", "en": "Unknown"}
OTHER_NAME = {"zh": "其他", "en": "Other"}
EPISODE_BORDER = {"zh": "------ 下一集 ------", "en": "------ next episode ------"}


def detect_language(texts: Sequence[str]) -> Language:
    """zh when at least a fifth of the sampled lines hold Chinese characters."""
    sample = [t for t in texts[:: max(1, len(texts) // 400)] if t]
    if not sample:
        return "en"
    return "zh" if sum(bool(_CJK.search(t)) for t in sample) * 5 >= len(sample) else "en"


def _tool_lines(tools: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{k}. {name}: {description}" for k, (name, description) in enumerate(tools, 1))


def system_prompt(language: Language, protocol: p.Protocol, tools: Sequence[tuple[str, str]],
                  voice_tool: str = "audio_sim") -> str:
    """tools: (name, description) pairs the model may call."""
    listing = _tool_lines(tools)
    if language == "zh":
        head = (
            "你负责判断电视剧中一句台词的说话人。你会看到这句台词前后的对白（已有的说话人标签来自算法，"
            "可能有错），以及一份候选说话人名单。你可以调用工具获取证据，最后从名单中选出说话人。\n"
            f"{RULE}\n## 可用工具（台词已确定，调用时无需参数）：\n{listing}\n{RULE}\n"
        )
        if protocol == "tagged":
            fmt = (
                "## 回复格式：\n"
                "1. 每次回复先写<think>思考</think>。\n"
                "2. 然后二选一：调用一个工具<tool>工具名()</tool>，或给出答案<answer>候选人名字</answer>。\n"
                "3. 每次只调用一个工具，同一工具不要重复调用；工具结果会在下一条消息中给出。\n"
                "4. 标签之外不要输出任何内容。\n"
            )
        else:
            fmt = (
                "## 回复格式：每次回复是一个JSON对象，二选一：\n"
                '{"think": "思考", "tool": {"name": "工具名", "arguments": {}}} 或 '
                '{"think": "思考", "answer": "候选人名字"}。\n'
                "每次只调用一个工具，同一工具不要重复调用；JSON之外不要输出任何内容。\n"
            )
        tail = (
            f"{RULE}\n## 注意：\n"
            f"1. 给出答案前必须先调用一次{voice_tool}（声纹相似度通常是最有力的证据）。\n"
            "2. 答案必须与名单中的某个名字完全一致；说话人不是名单中的已命名角色时回答\"其他\"。\n"
            "3. 标签\"新角色-N\"表示声纹聚类得到的未命名角色（同编号为同一人），它也可能是某个声音变了的已知角色。\n"
        )
    else:
        head = (
            "You decide who speaks one line of a TV drama. You see the dialogue around the line (the speaker "
            "labels there come from an algorithm and may be wrong) and a list of candidate speakers. You may call "
            "tools to gather evidence, then choose the speaker from the list.\n"
            f"{RULE}\n## Tools (the line is implied; call them without arguments):\n{listing}\n{RULE}\n"
        )
        if protocol == "tagged":
            fmt = (
                "## Reply format:\n"
                "1. Every reply starts with <think>your reasoning</think>.\n"
                "2. Then either call one tool, <tool>tool_name()</tool>, or answer, <answer>candidate name</answer>.\n"
                "3. One tool per reply, never the same call twice; its result comes in the next message.\n"
                "4. Write nothing outside the tags.\n"
            )
        else:
            fmt = (
                "## Reply format: every reply is one JSON object, either\n"
                '{"think": "reasoning", "tool": {"name": "tool_name", "arguments": {}}} or '
                '{"think": "reasoning", "answer": "candidate name"}.\n'
                "One tool per reply, never the same call twice; nothing outside the JSON.\n"
            )
        tail = (
            f"{RULE}\n## Notes:\n"
            f"1. Call {voice_tool} once before answering (voice similarity is usually the strongest evidence).\n"
            "2. The answer must equal one name of the list; answer \"Other\" when the speaker is none of the named "
            "candidates.\n"
            "3. A label \"新角色-N\" is an unnamed voice cluster (same N, same person); it may also be a named "
            "character whose voice sounded different.\n"
        )
    return head + fmt + tail


def user_prompt(language: Language, context: Sequence[str], target_number: int, candidates: Sequence[str]) -> str:
    """context: rendered context rows ("[k] speaker: text" and episode borders)."""
    listing = "\n".join(f"{k}. {name}" for k, name in enumerate(candidates, 1))
    body = "\n".join(context)
    if language == "zh":
        return (
            f"## 上下文台词（格式\"[序号] 说话人: 台词\"，说话人\"{UNKNOWN['zh']}\"为待判断的台词）：\n{body}\n{RULE}\n"
            f"## 候选说话人：\n{listing}\n{RULE}\n"
            f"## 请判断第[{target_number}]句台词的说话人。"
        )
    return (
        f"## Dialogue (\"[number] speaker: text\"; the speaker \"{UNKNOWN['en']}\" marks the line to decide):\n"
        f"{body}\n{RULE}\n## Candidate speakers:\n{listing}\n{RULE}\n"
        f"## Who speaks line [{target_number}]?"
    )


def context_row(number: int, speaker: str, text: str) -> str:
    return f"[{number}] {speaker}: {text}"


def tool_result(language: Language, name: str, text: str, ok: bool) -> str:
    if language == "zh":
        return f"工具{name}的结果：\n{text}" if ok else f"工具{name}调用失败：{text}\n请修正后重试，或改用其他工具。"
    return f"Result of {name}:\n{text}" if ok else f"Tool {name} failed: {text}\nFix the call or use another tool."


def called_note(language: Language, called: Sequence[str]) -> str:
    if language == "zh":
        return ("已调用过的工具：" + "、".join(called) + "。不要重复调用。") if called else "你还没有调用任何工具。"
    return ("Tools already called: " + ", ".join(called) + ". Do not call them again.") if called \
        else "You have not called any tool yet."


_CORRECTIONS: dict[str, dict[str, str]] = {
    "zh": {
        p.PATTERN_NOT_MATCHED: "回复没有按规定的格式书写。",
        p.MULTIPLE_IDENTIFIER: "标签<{detail}>出现了多次，每种标签只能出现一次。",
        p.NO_THINK: "回复缺少<think>思考</think>。",
        p.TOOL_AND_ANSWER: "每次回复必须且只能在调用工具和给出答案中选一个。",
        p.UNSUPPORTED_TOOL: "没有名为{detail}的工具，请使用工具列表中的名字。",
        p.BAD_ARGUMENTS: "工具{detail}的参数无法解析；这些工具无需参数。",
        p.DUPLICATE_CALL: "你已经调用过{detail}，请查看之前的结果，或调用别的工具，或给出答案。",
        p.VOICE_NOT_CALLED: "给出答案前请先调用{detail}。",
        p.NOT_CANDIDATE: "\"{detail}\"不在候选名单中，请从名单中选一个名字（不是已命名角色时回答\"其他\"）。",
        p.EMPTY_REPLY: "回复为空。",
        p.SEVERAL_CALLS: "一次只能调用一个工具（你调用了{detail}个）。",
    },
    "en": {
        p.PATTERN_NOT_MATCHED: "The reply is not in the required format.",
        p.MULTIPLE_IDENTIFIER: "The tag <{detail}> appears more than once; each tag may appear once.",
        p.NO_THINK: "The reply lacks <think>reasoning</think>.",
        p.TOOL_AND_ANSWER: "Each reply must either call one tool or give the answer, not both and not neither.",
        p.UNSUPPORTED_TOOL: "There is no tool named {detail}; use a name from the tool list.",
        p.BAD_ARGUMENTS: "The arguments of {detail} could not be read; these tools take no arguments.",
        p.DUPLICATE_CALL: "You already called {detail}; read its result, call another tool, or answer.",
        p.VOICE_NOT_CALLED: "Call {detail} before answering.",
        p.NOT_CANDIDATE: "\"{detail}\" is not in the candidate list; choose a name from it (\"Other\" when the "
                         "speaker is none of the named characters).",
        p.EMPTY_REPLY: "The reply is empty.",
        p.SEVERAL_CALLS: "Call one tool at a time (you called {detail}).",
    },
}


def correction(language: Language, problem: p.Problem, called: Sequence[str]) -> str:
    """The corrective message for a rejected reply (the reply does not count)."""
    head = "上一条回复无效，请直接重写一条合规的回复：" if language == "zh" else \
        "Your last reply is invalid; write a valid one instead:"
    body = _CORRECTIONS[language][problem.code].format(detail=problem.detail)
    return f"{head}\n{body}\n{called_note(language, called)}"
