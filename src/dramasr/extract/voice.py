"""Voices: speech found with webrtcvad, one resemblyzer embedding (256-d, weights in its wheel)
per subtitle line from the speech inside the line's time span. A line with too little speech
gets a zero row, which every downstream stage reads as "no voice".
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from dramasr.extract.media import SAMPLE_RATE

VOICE_DIM = 256
VAD_FRAME = 480  # 30 ms at 16 kHz, one of webrtcvad's frame lengths
MIN_SPEECH_S = 0.3  # less speech than this in a line gives no embedding
VAD_AGGRESSIVENESS = 2  # 0..3; 3 drops quiet syllables of real dialogue


@lru_cache(maxsize=1)
def _encoder():
    import torch
    from resemblyzer import VoiceEncoder

    torch.set_num_threads(1)  # episodes run side by side, one process each
    return VoiceEncoder(device="cpu", verbose=False)


def speech_mask(wav: np.ndarray) -> np.ndarray:
    """bool per 30 ms frame: webrtcvad hears speech in it."""
    import webrtcvad

    vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
    n = len(wav) // VAD_FRAME
    pcm = (np.clip(wav[: n * VAD_FRAME], -1, 1) * 32767).astype("<i2").tobytes()
    step = VAD_FRAME * 2
    return np.fromiter((vad.is_speech(pcm[i * step:(i + 1) * step], SAMPLE_RATE) for i in range(n)), bool, n)


def _normalise_volume(wav: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if len(wav) else 0.0
    if rms <= 1e-6:
        return wav
    gain = 10 ** ((target_dbfs - 20 * np.log10(rms)) / 20)
    return (wav * gain).astype(np.float32)


def speech_of_span(wav: np.ndarray, mask: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """The samples of [start_s, end_s) that the VAD marked as speech, joined."""
    lo = max(0, int(start_s * SAMPLE_RATE) // VAD_FRAME)
    hi = min(len(mask), int(np.ceil(end_s * SAMPLE_RATE / VAD_FRAME)))
    frames = np.flatnonzero(mask[lo:hi]) + lo
    if len(frames) == 0:
        return np.zeros(0, np.float32)
    return wav.reshape(-1)[: len(mask) * VAD_FRAME].reshape(len(mask), VAD_FRAME)[frames].reshape(-1)


def embed_speech(speech: np.ndarray) -> np.ndarray | None:
    """One L2-normalised 256-d embedding, or None when there is too little speech."""
    if len(speech) < MIN_SPEECH_S * SAMPLE_RATE:
        return None
    return np.asarray(_encoder().embed_utterance(_normalise_volume(speech)), np.float32)


def line_embeddings(wav: np.ndarray, spans_s: Sequence[tuple[float, float]],
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [lines, 256] with zero rows for lines without speech, float32 [lines] seconds of speech)."""
    mask = speech_mask(wav) if mask is None else mask
    out = np.zeros((len(spans_s), VOICE_DIM), np.float32)
    speech_s = np.zeros(len(spans_s), np.float32)
    for i, (start, end) in enumerate(spans_s):
        speech = speech_of_span(wav, mask, start, end)
        speech_s[i] = len(speech) / SAMPLE_RATE
        emb = embed_speech(speech)
        if emb is not None:
            out[i] = emb
    return out, speech_s
