"""Drama data: the columnar in-memory model, the release layout, subtitle files."""

from dramasr.data.model import (
    DELETED_MARK,
    NARRATION_MARK,
    NEW_CHARACTER_PREFIX,
    OTHER,
    Drama,
    Episode,
    FaceTracks,
    Lines,
)
from dramasr.data.release import load_drama, save_drama

__all__ = [
    "DELETED_MARK", "NARRATION_MARK", "NEW_CHARACTER_PREFIX", "OTHER", "Drama", "Episode",
    "FaceTracks", "Lines", "load_drama", "save_drama",
]
