"""SFT/RL export read back by their formats' readers, and the release's reward."""

from __future__ import annotations

import json

import pytest

from dramasr.finetune import export_rl, export_sft, reward, training_contexts
from dramasr.reason import protocol as p
from dramasr.synth import synth_drama

GT = {"character_gt": "江阳", "candidate_list": ["江阳", "朱伟", "其他"], "name_others": "其他"}
OTHER_GT = {**GT, "character_gt": "其他"}
VOICE = "<think>a</think><tool>audio_sim()</tool>"


def test_reward_follows_the_release_rule():
    assert reward([VOICE, "<think>b</think><answer>江阳</answer>"], GT) == 1.0
    assert reward([VOICE, "<think>b</think><answer>朱伟</answer>"], GT) == 0.0
    # 4 turns: 2 beyond the free 2 cost 0.01 each; one repeated call costs 0.1
    four = [VOICE, VOICE, "<think>c</think><tool>char_relation()</tool>", "<think>d</think><answer>江阳</answer>"]
    assert reward(four, GT) == pytest.approx(1.0 - 0.02 - 0.1)
    # malformed: no answer, or two
    assert reward([VOICE], GT) == -1.0
    assert reward(["<think>x</think><answer>江阳</answer><answer>朱伟</answer>"], GT) == -1.0
    assert reward(["plain text"], GT) == -1.0
    # truth Other: any non-named answer is right, a named one wrong
    assert reward([VOICE, "<think>b</think><answer>路人甲</answer>"], OTHER_GT) == 1.0
    assert reward([VOICE, "<think>b</think><answer>朱伟</answer>"], OTHER_GT) == 0.0
    assert reward([VOICE, "<think>b</think><answer>江阳</answer>"], GT, penalty_turns=0.5) == 1.0


@pytest.fixture(scope="module")
def contexts():
    drama = synth_drama(seed=5, episodes=2, lines_per_episode=80, name="train_small")
    return training_contexts([drama])


def test_export_sft_writes_sharegpt_that_llamafactory_reads(contexts, tmp_path):
    out = tmp_path / "sft" / "dramasr_sft.json"
    info = export_sft(contexts, out, limit=12, seed=1)
    assert info["conversations"] == 12
    data = json.loads(out.read_text(encoding="utf-8"))
    dataset_info = json.loads((out.parent / "dataset_info.json").read_text())
    spec = dataset_info["dramasr_sft"]
    assert spec["file_name"] == out.name and spec["formatting"] == "sharegpt"
    drama, _ = contexts[0]
    for record in data:
        turns = record[spec["columns"]["messages"]]
        assert record[spec["columns"]["system"]].startswith("你负责判断")
        # sharegpt: human first, then alternating, ending on the model's answer
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
        replies = [t["value"] for t in turns if t["from"] == "gpt"]
        assert "audio_sim" in replies[0]
        last = p.parse_tagged(replies[-1])
        assert last.kind == "answer"
        ground = {"character_gt": last.answer, "candidate_list": [], "name_others": "其他"}
        assert reward(replies, ground) == 1.0 - 0.01 * max(0, len(replies) - 2)
        # the tool results are the tools' real text
        assert "voice similarity" in turns[2]["value"]


def test_export_rl_writes_parquet_that_pyarrow_reads(contexts, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the llm extra) is not installed")
    out = tmp_path / "rl.parquet"
    info = export_rl(contexts, out, limit=20, seed=2, validation_share=0.1)
    train = pq.read_table(out).to_pylist()
    val = pq.read_table(tmp_path / "rl_val.parquet").to_pylist()
    assert (len(train), len(val)) == (info["train_rows"], info["validation_rows"]) == (18, 2)
    drama, _ = contexts[0]
    lines = {row["extra_info"]["subtitle_idx"] for row in train + val}
    assert len(lines) == 20
    for row in train:
        assert row["data_source"] == "speaker_recognition"
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        truth = row["reward_model"]["ground_truth"]
        true_name = drama.lines.speaker[row["extra_info"]["subtitle_idx"]]
        assert truth["character_gt"] == (true_name if true_name in truth["candidate_list"] else "其他")
        assert truth["candidate_list"][-1] == truth["name_others"] == "其他"
