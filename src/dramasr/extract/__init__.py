"""Media front-end: video files + subtitle files + a cast list -> a drama folder in the DramaSR
layout (voices, named face tracks, lip evidence), run episode by episode on a local process
pool or a Ray cluster. Needs the `media` extra (`pip install -e ".[media]"`).
"""

import warnings

# face_recognition_models imports pkg_resources, which warns on every run and in every worker
# (the setuptools<81 pin keeps it working): not the user's concern
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

from dramasr.extract.episode import ExtractConfig  # noqa: E402
from dramasr.extract.pipeline import extract_drama  # noqa: E402

__all__ = ["ExtractConfig", "extract_drama"]
