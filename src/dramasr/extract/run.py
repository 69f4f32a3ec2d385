"""`dramasr run`: extract -> seeds -> attribute (-> lip evidence) -> named subtitles, one command.

OUT/drama/ holds the extracted drama, OUT/predictions.jsonl the predictions, and OUT/ one named
subtitle file per input subtitle file, in that file's own format (SRT, ASS or WebVTT).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dramasr.data.predictions import PredictionRecord
from dramasr.errors import DramaError
from dramasr.extract.episode import ExtractConfig
from dramasr.extract.pipeline import Progress, extract_drama


def choose_seeds(drama, seeds: str) -> str:
    """'auto' = the cast's voice samples when there are any, else the lip-reading face seeds."""
    if seeds != "auto":
        return seeds
    for key in ("voice", "faces"):
        if key in drama.seed_files:
            return key
    raise DramaError("no seeds: the cast has no voice samples and no named face was seen speaking",
                     field="--seeds", hint="add voice samples to cast.yaml, or photos that match the episode's faces")


def attribute_extracted(drama, seeds: str = "auto", *, lip: bool = True,
                        hook: Progress | None = None) -> list[PredictionRecord]:
    """The trained reasoner on an extracted drama, then the lip evidence (when asked and present)."""
    from dramasr.attribute import attribute
    from dramasr.tools.lip_activity import apply_lip_evidence, load_lip_evidence

    records = attribute(drama, seeds=choose_seeds(drama, seeds), hook=hook).records
    evidence = load_lip_evidence(drama) if lip else None
    return apply_lip_evidence(records, evidence) if evidence is not None else records


def run_pipeline(videos: Sequence[str | Path], subtitles: Sequence[str | Path], cast: str | Path,
                 out_dir: str | Path, *, seeds: str = "auto", lip: bool = True, config: ExtractConfig | None = None,
                 engine: str = "local", workers: int | None = None, address: str | None = None,
                 progress: Progress | None = None) -> list[Path]:
    from dramasr.data import load_drama
    from dramasr.data.predictions import write_predictions
    from dramasr.data.subtitles import default_unknown_label, export_subtitles, publish_names, subtitle_format

    out = Path(out_dir)
    for path in subtitles:
        subtitle_format(path)  # an unknown subtitle type fails before any work
        if (out / Path(path).name).resolve() == Path(path).resolve():
            raise DramaError("the named subtitles would overwrite this input file", file=path, field="--output",
                             hint="write the output to another folder")
    drama_dir = extract_drama(videos, subtitles, cast, out / "drama", config=config, engine=engine,
                              workers=workers, address=address, progress=progress)
    drama = load_drama(drama_dir)
    records = attribute_extracted(drama, seeds, lip=lip, hook=progress)
    write_predictions(out / "predictions.jsonl", records)
    speakers = [""] * len(drama.lines)
    for record in records:
        speakers[record.line] = record.speaker
    # as `dramasr export` publishes them: Other lines without a name, new characters "Unknown 1", ...
    speakers = publish_names(speakers, unknown_label=default_unknown_label(drama))
    written = [out / "predictions.jsonl"]
    for episode, source in zip(drama.episodes, subtitles, strict=True):
        source = Path(source)
        written.append(export_subtitles(drama, episode.number, out / source.name, speakers=speakers))
    return written
