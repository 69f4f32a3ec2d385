"""Media front-end: video files + subtitle files + a cast list -> a drama folder in the DramaSR
layout (voices, named face tracks, lip evidence), run episode by episode on a local process
pool or a Ray cluster. Needs the `media` extra (`pip install -e ".[media]"`).
"""

from dramasr.extract.episode import ExtractConfig
from dramasr.extract.pipeline import extract_drama

__all__ = ["ExtractConfig", "extract_drama"]
