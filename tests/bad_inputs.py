"""A catalogue of ways a drama folder (or an option) can be broken, one small function each.

Each breakage edits a copy of a good drama folder in place and says what a user must get:
"mend" (exit 0, the repair reported on stderr), "error" (exit 2, one line naming the file
or option), or "ok" (valid input, exit 0). `pick(n)` chooses where (an index below n), so a
property-based test can move every breakage around the drama. Used by
tests/test_bad_input.py and by benchmarks/bad_input_table.py (the table in BENCHMARKS.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Pick = Callable[[int], int]


@dataclass(frozen=True)
class Breakage:
    name: str
    expect: str  # "mend", "error" or "ok"
    apply: Callable[[Path, Pick], list[str] | None]  # returns extra CLI args for the command, if any
    command: str = "propagate"  # the command that meets the breakage ("propagate", "attribute", "evaluate", "export")


def _episodes(root: Path, sub: str = "subtitle_data", suffix: str = ".json") -> list[Path]:
    return sorted(p for p in (root / sub).iterdir() if p.suffix == suffix and p.stem.isdigit())


def _edit_json(path: Path, edit: Callable[[Any], Any]) -> None:
    """Edit a JSON file in place (`edit` changes the parsed document; what it returns is ignored)."""
    doc = json.loads(path.read_text("utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")


def _line(root: Path, pick: Pick, edit: Callable[[dict[str, Any]], None]) -> None:
    episodes = _episodes(root)
    path = episodes[pick(len(episodes))]

    def change(doc: dict[str, Any]) -> None:
        objects = doc["object_list"]
        edit(objects[str(pick(len(objects)))])

    _edit_json(path, change)


def _face(root: Path, pick: Pick, edit: Callable[[dict[str, Any]], None]) -> None:
    episodes = [p for p in _episodes(root, "face_data") if json.loads(p.read_text("utf-8"))["object_list"]]
    path = episodes[pick(len(episodes))]
    _edit_json(path, lambda doc: edit(doc["object_list"][str(pick(len(doc["object_list"])))]))


def _embedding_row(root: Path, pick: Pick, value: float) -> None:
    path = _episodes(root, "sv_embedding", ".npy")[pick(len(_episodes(root, "sv_embedding", ".npy")))]
    emb = np.load(path)
    row = pick(len(emb))
    emb[row] = value
    if value == 1.0:  # one NaN in an otherwise fine row
        emb[row, pick(emb.shape[1])] = np.nan
    np.save(path, emb)


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj.__setitem__(field, value)


def _pop(field: str) -> Callable[[dict[str, Any]], None]:
    return lambda obj: obj.pop(field, None)


def _seconds_60(obj: dict[str, Any]) -> None:
    hh, mm, _ = obj["start_time"].split(":")
    obj["start_time"] = f"{hh}:{mm}:60.000"
    obj["end_time"] = f"{hh}:{int(mm) + 1:02d}:00.500"


def _minutes_60(obj: dict[str, Any]) -> None:
    obj["start_time"] = "00:60:00.000"
    obj["end_time"] = "01:00:00.800"


def _swap_times(obj: dict[str, Any]) -> None:
    obj["start_time"], obj["end_time"] = obj["end_time"], obj["start_time"]
    if obj["start_time"] == obj["end_time"]:
        obj["start_time"] = "00:59:59.000"


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: max(1, len(raw) // 2)])


def _first(root: Path, sub: str, suffix: str, pick: Pick) -> Path:
    files = _episodes(root, sub, suffix)
    return files[pick(len(files))]


def _remove_truth(root: Path, pick: Pick) -> None:
    def strip(doc: dict[str, Any]) -> None:
        for obj in doc["object_list"].values():
            obj.pop("character", None)

    for path in _episodes(root):
        _edit_json(path, strip)


def _gap_in_keys(root: Path, pick: Pick) -> None:
    path = _first(root, "subtitle_data", ".json", pick)
    doc = json.loads(path.read_text("utf-8"))
    objects = doc["object_list"]
    drop = pick(len(objects))
    kept = [objects[str(i)] for i in range(len(objects)) if i != drop]
    doc["object_list"] = {str(i if i < drop else i + 1): obj for i, obj in enumerate(kept)}
    doc["objects"] = len(kept)
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    emb_path = root / "sv_embedding" / f"{path.stem}.npy"
    np.save(emb_path, np.delete(np.load(emb_path), drop, axis=0))


def _empty_episode(root: Path, pick: Pick) -> None:
    last = _episodes(root)[-1]
    number = int(last.stem) + 1
    stem = f"{number:0{len(last.stem)}d}"
    (root / "subtitle_data" / f"{stem}.json").write_text(json.dumps({"objects": 0, "object_list": {}}), "utf-8")
    dim = np.load(_episodes(root, "sv_embedding", ".npy")[0]).shape[1]
    np.save(root / "sv_embedding" / f"{stem}.npy", np.zeros((0, dim), np.float32))


def _duplicate_episode(root: Path, pick: Pick) -> None:
    path = _first(root, "subtitle_data", ".json", pick)
    (path.parent / f"0{path.name}").write_bytes(path.read_bytes())


def _episode_without_subtitles(root: Path, pick: Pick) -> None:
    _first(root, "subtitle_data", ".json", pick).unlink()


def _bad_width(root: Path, pick: Pick) -> None:
    files = _episodes(root, "sv_embedding", ".npy")
    path = files[1 + pick(len(files) - 1)]  # a later episode than the first, which sets the width
    emb = np.load(path)
    np.save(path, np.concatenate([emb, emb[:, :3]], axis=1))


def _bad_count(root: Path, pick: Pick) -> None:
    path = _first(root, "sv_embedding", ".npy", pick)
    np.save(path, np.load(path)[1:])


def _object_npy(root: Path, pick: Pick) -> None:
    path = _first(root, "sv_embedding", ".npy", pick)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


def _non_utf8(root: Path, pick: Pick) -> None:
    path = _first(root, "subtitle_data", ".json", pick)
    path.write_bytes(path.read_text("utf-8").encode("utf-16"))


def _bom(root: Path, pick: Pick) -> None:
    path = _first(root, "subtitle_data", ".json", pick)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def _seed_out_of_range(root: Path, pick: Pick) -> None:
    _edit_json(root / "init_seeds_1pct.json",
               lambda doc: doc["character_list"][pick(len(doc["character_list"]))]["utterance_list"].append(10**7))


def _seed_given_twice(root: Path, pick: Pick) -> None:
    def share(doc: dict[str, Any]) -> None:
        owners = [c for c in doc["character_list"] if c["utterance_list"]]
        first = owners[pick(len(owners))]
        second = next(c for c in owners if c is not first)
        second["utterance_list"].append(first["utterance_list"][0])

    _edit_json(root / "init_seeds_1pct.json", share)


def _seed_not_a_seed_file(root: Path, pick: Pick) -> None:
    (root / "init_seeds_1pct.json").write_text(json.dumps({"characters": []}), "utf-8")


def _seed_unknown_character(root: Path, pick: Pick) -> None:
    def add(doc: dict[str, Any]) -> None:
        used = {i for c in doc["character_list"] for i in c["utterance_list"]}
        free = next(i for i in range(10**6) if i not in used)
        doc["character_list"].append({"name": "Nobody Known", "code": len(doc["character_list"]),
                                      "is_known": True, "utterance_list": [free]})

    _edit_json(root / "init_seeds_1pct.json", add)


def _relation_bad_entry(root: Path, pick: Pick) -> None:
    _edit_json(root / "relation.json", lambda doc: doc["relationship_list"].append(["only one name"]))


def _no_face_info(root: Path, pick: Pick) -> None:
    (root / "face_data" / "face_info.json").unlink()


def _no_face_file(root: Path, pick: Pick) -> None:
    _first(root, "face_data", ".json", pick).unlink()


def _huge_text(root: Path, pick: Pick) -> None:
    _line(root, pick, _set("text", "长" * 200_000))


def _unwritable_output(root: Path, pick: Pick) -> list[str]:
    blocker = root.parent / "a_file"
    blocker.write_text("not a folder")
    return ["-o", str(blocker / "out" / "pred.jsonl")]


def _output_is_a_folder(root: Path, pick: Pick) -> list[str]:
    folder = root.parent / "a_folder.jsonl"
    folder.mkdir(exist_ok=True)
    return ["-o", str(folder)]


def _unknown_predicted_name(root: Path, pick: Pick) -> list[str]:
    return ["--rename", "Someone Misspelt"]


def _truncated_predictions(root: Path, pick: Pick) -> list[str]:
    return ["--truncate"]


CATALOGUE: tuple[Breakage, ...] = (
    Breakage("subtitle file truncated", "error", lambda r, p: _truncate(_first(r, "subtitle_data", ".json", p))),
    Breakage("subtitle file is a JSON list", "error",
             lambda r, p: _first(r, "subtitle_data", ".json", p).write_text("[1, 2]", "utf-8")),
    Breakage("object_list missing", "error", lambda r, p: _edit_json(_first(r, "subtitle_data", ".json", p),
                                                                     lambda d: d.pop("object_list"))),
    Breakage("object_list key not a number", "error", lambda r, p: _edit_json(
        _first(r, "subtitle_data", ".json", p), lambda d: d["object_list"].__setitem__("x", d["object_list"]["0"]))),
    Breakage("start_time a number", "error", lambda r, p: _line(r, p, _set("start_time", 12.5))),
    Breakage("start_time missing", "error", lambda r, p: _line(r, p, _pop("start_time"))),
    Breakage("negative time", "error", lambda r, p: _line(r, p, _set("start_time", "-00:00:01.000"))),
    Breakage("60 in the seconds field", "mend", lambda r, p: _line(r, p, _seconds_60), "attribute"),
    Breakage("60 in the minutes field", "mend", lambda r, p: _line(r, p, _minutes_60)),
    Breakage("end before start", "mend", lambda r, p: _line(r, p, _swap_times)),
    Breakage("text null", "mend", lambda r, p: _line(r, p, _set("text", None))),
    Breakage("text a number", "mend", lambda r, p: _line(r, p, _set("text", 42))),
    Breakage("text an object", "error", lambda r, p: _line(r, p, _set("text", {"zh": "你好"}))),
    Breakage("start_frame a string", "mend", lambda r, p: _line(r, p, _set("start_frame", "12"))),
    Breakage("character a number", "mend", lambda r, p: _line(r, p, _set("character", 7))),
    Breakage("truth removed from every line", "ok", _remove_truth, "attribute"),
    Breakage("'objects' count wrong", "mend", lambda r, p: _edit_json(
        _first(r, "subtitle_data", ".json", p), lambda d: d.__setitem__("objects", 10**6))),
    Breakage("gap in object_list keys", "mend", _gap_in_keys, "attribute"),
    Breakage("embedding row NaN", "mend", lambda r, p: _embedding_row(r, p, np.nan), "attribute"),
    Breakage("one NaN in an embedding row", "mend", lambda r, p: _embedding_row(r, p, 1.0), "attribute"),
    Breakage("embedding row infinite", "mend", lambda r, p: _embedding_row(r, p, np.inf), "attribute"),
    Breakage("embedding row all zero", "mend", lambda r, p: _embedding_row(r, p, 0.0), "attribute"),
    Breakage("embedding width differs in one episode", "error", _bad_width),
    Breakage("embedding row count wrong", "error", _bad_count),
    Breakage("embedding file truncated", "error", lambda r, p: _truncate(_first(r, "sv_embedding", ".npy", p))),
    Breakage("embedding file holds pickled objects", "error", _object_npy),
    Breakage("embedding file missing for an episode", "mend",
             lambda r, p: _first(r, "sv_embedding", ".npy", p).unlink(), "attribute"),
    Breakage("empty episode", "ok", _empty_episode, "attribute"),
    Breakage("duplicate episode (0001 and 00001)", "error", _duplicate_episode),
    Breakage("episode without a subtitle file", "error", _episode_without_subtitles),
    Breakage("subtitle file not UTF-8 (UTF-16)", "error", _non_utf8),
    Breakage("UTF-8 byte-order mark", "mend", _bom, "attribute"),
    Breakage("huge text (200K characters)", "ok", _huge_text, "attribute"),
    Breakage("seed line out of range", "error", _seed_out_of_range),
    Breakage("seed file without character_list", "error", _seed_not_a_seed_file),
    Breakage("seed line given to two characters", "error", _seed_given_twice),
    Breakage("seed of a character not in the cast", "ok", _seed_unknown_character, "attribute"),
    Breakage("relation entry malformed", "mend", _relation_bad_entry),
    Breakage("relation.json a JSON list", "error", lambda r, p: (r / "relation.json").write_text("[]", "utf-8")),
    Breakage("relation.json truncated", "error", lambda r, p: _truncate(r / "relation.json")),
    Breakage("face track without a box", "mend", lambda r, p: _face(r, p, lambda o: o["geometry"][
        "active_frame_list"]["0"].pop("box")), "attribute"),
    Breakage("face track 60 in the seconds field", "mend", lambda r, p: _face(r, p, _seconds_60)),
    Breakage("face track id_list malformed", "mend", lambda r, p: _face(r, p, _set("id_list", {"0": "江阳"}))),
    Breakage("face file truncated", "error", lambda r, p: _truncate(_first(r, "face_data", ".json", p))),
    Breakage("face file missing for an episode", "mend", _no_face_file, "attribute"),
    Breakage("face_info.json missing", "ok", _no_face_info, "evaluate"),
    Breakage("output under a file (unwritable)", "error", _unwritable_output),
    Breakage("output path is a folder", "error", _output_is_a_folder),
    Breakage("predicted name not in the cast", "error", _unknown_predicted_name, "evaluate"),
    Breakage("predictions file truncated", "error", _truncated_predictions, "evaluate"),
)


# ----------------------------------------------------------------------------- running one


@dataclass
class Outcome:
    exit_code: int
    stderr: str
    stdout: str
    traceback: str | None  # set when the command raised instead of exiting
    output: Path  # the file or folder the command was asked to write
    root: Path  # the broken drama folder


def run_breakage(base: Path, work: Path, breakage: Breakage, pick: Pick) -> Outcome:
    """Copy `base` to `work`, break it, run the breakage's command in-process, and return what happened."""
    import shutil
    import traceback as tb

    from typer.testing import CliRunner

    from dramasr.cli import app

    root = work / base.name
    shutil.copytree(base, root)
    out = work / "out" / "pred.jsonl"
    changed = breakage.apply(root, pick)
    extra = changed if isinstance(changed, list) else []
    runner = CliRunner()
    if breakage.command == "evaluate":
        pred = work / "given.jsonl"
        first = runner.invoke(app, ["--quiet", "propagate", str(base), "-o", str(pred)])
        assert first.exit_code == 0, first.output
        if "--rename" in extra:
            rows = [json.loads(line) for line in pred.read_text("utf-8").splitlines()]
            rows[pick(len(rows))]["speaker"] = extra[extra.index("--rename") + 1]
            pred.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
        if "--truncate" in extra:
            _truncate(pred)
        out = work / "out" / "report"
        args = ["evaluate", str(root), "--pred", str(pred), "-o", str(out)]
    else:
        if "-o" in extra:
            out = Path(extra[extra.index("-o") + 1])
        args = [breakage.command, str(root), "-o", str(out)]
    result = runner.invoke(app, ["--quiet", *args])
    trace = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(tb.format_exception(result.exception))
    return Outcome(result.exit_code, result.stderr, result.stdout, trace, out, root)
