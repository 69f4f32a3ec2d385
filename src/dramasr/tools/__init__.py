"""Evidence tools: one module per source, each usable by the trained model (vectorised
features over many (line, candidate) pairs) and by an LLM agent (`call` -> Evidence text)."""

from dramasr.tools.audio_sim import AudioSim
from dramasr.tools.base import (
    OTHER_CLASS,
    Context,
    Evidence,
    LabelState,
    Tool,
    label_state_from_propagation,
    label_state_from_release,
    named_classes,
)
from dramasr.tools.char_relation import CharRelation
from dramasr.tools.dialogue_context import DialogueContext
from dramasr.tools.faces_on_screen import FacesOnScreen
from dramasr.tools.name_mentions import NameMentions
from dramasr.tools.scene_caption import SceneCaption
from dramasr.tools.voice_cluster import VoiceCluster

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (AudioSim(), FacesOnScreen(), DialogueContext(), NameMentions(), CharRelation(), SceneCaption(),
                 VoiceCluster())
}

__all__ = [
    "OTHER_CLASS", "TOOLS", "AudioSim", "CharRelation", "Context", "DialogueContext", "Evidence",
    "FacesOnScreen", "LabelState", "NameMentions", "SceneCaption", "Tool", "label_state_from_propagation",
    "label_state_from_release", "named_classes", "VoiceCluster",
]
