"""The review page: a small local web app (FastAPI + uvicorn on 127.0.0.1, one HTML page
with plain JavaScript, no build step).

It lists a drama's lines with the predicted speaker, confidence, runner-up and the
deciding evidence in words; filters them by episode, character and confidence; takes
corrections (accept, change speaker, mark Other, name a group) by keyboard, each saved to
the corrections file as it is made; and re-runs attribution with the corrections in the
background, then highlights the lines whose speaker changed. When the drama folder (or
--media) holds a media file per episode, the page plays the line and shows its frame.
Needs the review extra (fastapi, uvicorn).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from dramasr.data.model import NEW_CHARACTER_PREFIX, OTHER, Drama
from dramasr.data.predictions import Predictions, load_any_predictions, write_predictions
from dramasr.errors import DramaError
from dramasr.review.corrections import Correction, CorrectionsFile, allowed_speakers
from dramasr.review.suggest import prediction_groups, suggest

log = logging.getLogger(__name__)

MEDIA_FOLDERS = ("media", "video", "videos", "audio")
MEDIA_SUFFIXES = {".mp4": "video", ".mkv": "video", ".webm": "video", ".mov": "video", ".m4v": "video",
                  ".m4a": "audio", ".mp3": "audio", ".wav": "audio", ".flac": "audio", ".ogg": "audio",
                  ".opus": "audio"}
PAGE = Path(__file__).with_name("static") / "index.html"


def find_media(drama: Drama, folders: Sequence[Path]) -> dict[int, Path]:
    """Episode number -> media file, from files named after the episode ("0001.mp4" or "1.mp4")."""
    by_stem = {ep.stem: ep.number for ep in drama.episodes}
    numbers = {ep.number for ep in drama.episodes}
    out: dict[int, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in MEDIA_SUFFIXES or not path.is_file():
                continue
            number = by_stem.get(path.stem)
            if number is None and path.stem.isdigit() and int(path.stem) in numbers:
                number = int(path.stem)
            if number is not None and number not in out:
                out[number] = path
    return out


def evidence_text(record: Mapping[str, Any]) -> str:
    """The deciding evidence of one prediction record, in words."""
    ev = record.get("evidence") or {}
    speaker, runner = record.get("speaker"), record.get("runner_up")
    if ev.get("correction"):
        c = ev["correction"]
        who = f" by {c['who']}" if c.get("who") else ""
        was = f" (was {c['was']})" if c.get("was") and c.get("was") != speaker else ""
        return f"corrected{who} at {c.get('when', '?')}{was}: fixed, and a seed for the rest"
    if ev.get("seed"):
        return "a seed line: its speaker was given"
    parts: list[str] = []
    if ev.get("carried"):
        m = ev["carried"]
        parts.append(f"its voice is {m.get('voice_cosine')} alike to corrected line {m.get('from_line')}, "
                     f"which had the same label: the correction carries to it")
    if ev.get("kept"):
        k = ev["kept"]
        parts.append(f"the re-run with corrections said {k.get('rerun_speaker')}, but the answer before stays: "
                     f"{k.get('why')}")
    if ev.get("group_correction"):
        g = ev["group_correction"]
        if g.get("followed"):
            parts.append(f"its group {g.get('group')} was named {g.get('speaker')} by {g.get('who') or 'a reviewer'}")
        else:
            parts.append(f"its group {g.get('group')} was named {g.get('speaker')}, but the evidence says "
                         f"{g.get('line_stage_speaker')}")
    if ev.get("group_stage"):
        g = ev["group_stage"]
        parts.append(f"the group stage gave its new-character group ({g.get('group_lines')} lines) to {speaker} "
                     f"(p={g.get('probability')})")
    if ev.get("stage"):
        parts.append(f"{ev['stage']} stage, {ev.get('tool_calls', '?')} tools")
    own, other = ev.get("speaker") or {}, ev.get("runner_up") or {}

    def pair(key: str, fmt: str = "{:.2f}") -> str:
        a = fmt.format(own[key]) if key in own else "?"
        return a + (f" vs {fmt.format(other[key])}" if key in other else "")

    if "voice_model_logp" in own:
        parts.append(f"voice model log-prob {pair('voice_model_logp')}" + (f" ({runner})" if runner else ""))
    if "voice_top5" in own:
        parts.append(f"voice similarity {pair('voice_top5')}")
    if "face_detections" in own:
        seen = "face on screen" if own.get("face_detections", 0) > 0 else "face not on screen"
        if other:
            seen += ", runner-up's " + ("on screen" if other.get("face_detections", 0) > 0 else "not")
        parts.append(seen)
    if own.get("spoke_previous_line") or own.get("spoke_next_line"):
        parts.append("speaks " + " and ".join(w for w, k in (("before", "spoke_previous_line"),
                                                              ("after", "spoke_next_line")) if own.get(k)))
    if own.get("named_in_previous_line"):
        parts.append("named in the previous line")
    if ev.get("propagation") and ev.get("propagation") != speaker:
        parts.append(f"propagation said {ev['propagation']}")
    if ev.get("speakers_in_subtitle"):
        parts.append(f"{ev['speakers_in_subtitle']} speakers' words in one subtitle")
    return "; ".join(parts) if parts else ""


def changed_lines(old: Sequence[str | None], new: Sequence[str | None]) -> list[int]:
    """Lines whose speaker changed, not counting a new-character group that only got another
    number (a re-run numbers new characters afresh): each old group is matched to the new
    label most of its lines carry."""
    votes: dict[str, dict[str, int]] = {}
    for a, b in zip(old, new, strict=True):
        if a and b and a.startswith(NEW_CHARACTER_PREFIX) and b.startswith(NEW_CHARACTER_PREFIX):
            votes.setdefault(a, {}).setdefault(b, 0)
            votes[a][b] += 1
    renamed = {a: max(v, key=v.__getitem__) for a, v in votes.items()}
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True))
            if a != b and not (a in renamed and renamed[a] == b)]


@dataclass
class RerunStatus:
    running: bool = False
    message: str = ""
    fraction: float = 0.0
    started: float = 0.0
    seconds: float | None = None
    changed: list[int] = field(default_factory=list)
    error: str | None = None


class ReviewSession:
    """What the server holds: the drama, the current predictions, the corrections file."""

    def __init__(self, drama: Drama, pred_path: Path, corrections_path: Path, *, output: Path | None = None,
                 seeds: str = "1pct", model_path: Path | None = None, media: Sequence[Path] = ()) -> None:
        self.drama = drama
        self.pred_path = pred_path
        self.pred = load_any_predictions(pred_path, drama)
        self.records = [r.to_dict() for r in self.pred.records()]
        self.by_line = {int(r["line"]): k for k, r in enumerate(self.records)}
        self.corrections = CorrectionsFile(corrections_path, drama)
        self.corrections.read()  # a bad file is reported now, not on the first page load
        self.output = output or pred_path.with_name(f"{pred_path.stem}.rerun.jsonl")
        self.seeds = seeds
        self.model_path = model_path
        root = Path(drama.source) if drama.source else None
        folders = list(media) + ([root / f for f in MEDIA_FOLDERS] if root else [])
        self.media = find_media(drama, folders)
        self.allowed = sorted(allowed_speakers(drama))
        self.version = 0
        self.status = RerunStatus()
        self.lock = threading.Lock()
        self._index()

    def _index(self) -> None:
        self.groups = prediction_groups(self.pred)
        self.group_of: dict[int, str] = {i: g for g, lines in self.groups.items() for i in lines}

    # ----- reading

    def meta(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for s in self.pred.speaker:
            if s is not None:
                counts[s] = counts.get(s, 0) + 1
        named = sorted((n for n in counts if not n.startswith(NEW_CHARACTER_PREFIX)), key=lambda n: -counts[n])
        return {
            "drama": self.drama.name, "lines": len(self.drama.lines), "predictions": str(self.pred_path),
            "episodes": [ep.number for ep in self.drama.episodes], "speakers": self.allowed,
            "characters": [[n, counts[n]] for n in named], "groups": len(self.groups),
            "media": {str(k): MEDIA_SUFFIXES[v.suffix.lower()] for k, v in self.media.items()},
            "corrections": str(self.corrections.path), "version": self.version, "other": OTHER,
        }

    def lines(self, *, episode: int | None = None, character: str | None = None, max_confidence: float | None = None,
              min_confidence: float | None = None, only: str | None = None, offset: int = 0,
              limit: int = 200) -> dict[str, Any]:
        current = self.corrections.current()
        followers = current.group_lines()
        lines = self.drama.lines
        changed = set(self.status.changed)
        chosen: list[int] = []
        suggested: dict[int, str] = {}
        if only == "suggested":
            for s in suggest(self.drama, self.pred, limit, current):
                suggested[s.line] = s.reason
            chosen = list(suggested)
        else:
            for r in self.records:
                i = int(r["line"])
                if episode is not None and int(r["episode"]) != episode:
                    continue
                if character and r["speaker"] != character and not (
                        character == "new" and r["speaker"].startswith(NEW_CHARACTER_PREFIX)):
                    continue
                conf = r.get("confidence")
                if max_confidence is not None and (conf is None or conf > max_confidence):
                    continue
                if min_confidence is not None and (conf is None or conf < min_confidence):
                    continue
                if only == "corrected" and i not in current.lines and i not in followers:
                    continue
                if only == "changed" and i not in changed:
                    continue
                chosen.append(i)
        total = len(chosen)
        rows = []
        for i in chosen[offset:offset + limit]:
            r = self.records[self.by_line[i]]
            corr = current.lines.get(i)
            gcorr = followers.get(i)
            group = self.group_of.get(i)
            rows.append({
                "line": i, "episode": int(r["episode"]), "start": round(float(lines.start[i]), 2),
                "end": round(float(lines.end[i]), 2), "text": lines.text[i], "speaker": r["speaker"],
                "confidence": r.get("confidence"), "runner_up": r.get("runner_up"),
                "candidates": r.get("candidates") or [], "evidence": evidence_text(r),
                "corrected": corr.to_dict() if corr else None,
                "group_corrected": gcorr.to_dict() if gcorr else None,
                "group": group, "group_size": len(self.groups[group]) if group else 0,
                "changed": i in changed, "why": suggested.get(i),
            })
        return {"total": total, "offset": offset, "rows": rows, "version": self.version}

    # ----- writing

    def correct(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Save one correction from the page: {line, speaker, who} or {line, group: true, speaker, who}."""
        line = body.get("line")
        if isinstance(line, bool) or not isinstance(line, int) or line not in self.by_line:
            raise DramaError(f"no line {line!r} in {self.drama.name}", field="line")
        speaker = body.get("speaker")
        if speaker is not None and not isinstance(speaker, str):
            raise DramaError("speaker must be a name", field="speaker")
        speaker = speaker.strip() if isinstance(speaker, str) else None
        who = str(body.get("who") or "")[:80]
        was = self.pred.speaker[line]
        if body.get("group"):
            group = self.group_of.get(line)
            if group is None:
                raise DramaError(f"line {line} is in no group (a new-character label or a group-stage decision)",
                                 field="group", line=line)
            lines = tuple(self.groups[group])
            saved = self.corrections.append(Correction(speaker, group=group, lines=lines, was=was, who=who))
        else:
            saved = self.corrections.append(Correction(speaker, line=line, was=was, who=who))
        return saved.to_dict()

    # ----- re-run

    def start_rerun(self) -> bool:
        with self.lock:
            if self.status.running:
                return False
            self.status = RerunStatus(running=True, message="starting", started=time.time())
        threading.Thread(target=self._rerun, name="dramasr-rerun", daemon=True).start()
        return True

    def _rerun(self) -> None:
        from dramasr.reason.model import AttributionModel
        from dramasr.review.seeding import attribute_with_corrections

        def hook(step: str, done: int, total: int) -> None:
            self.status.message, self.status.fraction = step, done / total if total else 0.0

        try:
            model = AttributionModel.load(self.model_path) if self.model_path else None
            result = attribute_with_corrections(self.drama, self.corrections.current(), seeds=self.seeds,
                                                model=model, hook=hook, previous=self.pred)
            write_predictions(self.output, result.records)
            new = Predictions.from_records(result.records, self.drama)
            with self.lock:
                changed = changed_lines(self.pred.speaker, new.speaker)
                self.pred = new
                self.records = [r.to_dict() for r in new.records()]
                self.by_line = {int(r["line"]): k for k, r in enumerate(self.records)}
                self._index()
                self.version += 1
                self.status = RerunStatus(False, f"done: {len(changed)} lines changed", 1.0, self.status.started,
                                          time.time() - self.status.started, changed)
        except DramaError as exc:
            self.status = RerunStatus(False, "failed", 0.0, self.status.started, None, [], str(exc))
        except Exception as exc:  # the page must hear of it; the server keeps running
            log.exception("re-run failed")
            self.status = RerunStatus(False, "failed", 0.0, self.status.started, None, [], repr(exc))

    def rerun_status(self) -> dict[str, Any]:
        s = self.status
        return {"running": s.running, "message": s.message, "fraction": round(s.fraction, 3),
                "seconds": None if s.seconds is None else round(s.seconds, 2), "changed": len(s.changed),
                "error": s.error, "version": self.version, "output": str(self.output)}


def create_app(session: ReviewSession) -> FastAPI:
    """The FastAPI application serving one review session."""
    app = FastAPI(title=f"dramasr review: {session.drama.name}", docs_url=None, redoc_url=None)

    @app.exception_handler(DramaError)
    async def drama_error(_request: Request, exc: DramaError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/api/meta")
    def meta() -> dict[str, Any]:
        return session.meta()

    @app.get("/api/lines")
    def lines(episode: int | None = None, character: str | None = None, max_confidence: float | None = None,
              min_confidence: float | None = None, only: str | None = None, offset: int = 0,
              limit: int = 200) -> dict[str, Any]:
        return session.lines(episode=episode, character=character or None, max_confidence=max_confidence,
                             min_confidence=min_confidence, only=only or None, offset=max(offset, 0),
                             limit=int(np.clip(limit, 1, 2000)))

    @app.post("/api/corrections")
    async def correct(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise DramaError("the request body is not JSON", field="body") from None
        if not isinstance(body, dict):
            raise DramaError("the request body must be a JSON object", field="body")
        return session.correct(body)

    @app.get("/api/corrections")
    def corrections() -> dict[str, Any]:
        current = session.corrections.current()
        return {"lines": [c.to_dict() for c in current.lines.values()],
                "groups": [c.to_dict() for c in current.groups.values()]}

    @app.post("/api/rerun")
    def rerun() -> JSONResponse:
        started = session.start_rerun()
        return JSONResponse(session.rerun_status(), status_code=202 if started else 409)

    @app.get("/api/rerun")
    def rerun_status() -> dict[str, Any]:
        return session.rerun_status()

    @app.get("/media/{episode}")
    def media(episode: int) -> FileResponse:
        path = session.media.get(episode)
        if path is None:
            raise HTTPException(404, f"no media file for episode {episode}")
        return FileResponse(path)

    return app


class BackgroundServer:
    """The review server on a thread (tests, benchmarks): `with BackgroundServer(session) as url: ...`."""

    def __init__(self, session: ReviewSession, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(session), host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="dramasr-review", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the review server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(session: ReviewSession, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the review server until interrupted (loopback only unless told otherwise)."""
    import uvicorn

    uvicorn.run(create_app(session), host=host, port=port, log_level="warning")


__all__ = ["BackgroundServer", "ReviewSession", "changed_lines", "create_app", "evidence_text", "find_media", "serve"]
