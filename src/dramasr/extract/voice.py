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


N_FFT, HOP, N_MELS = 400, 160, 40  # resemblyzer's hparams: 25 ms windows, 10 ms steps, 40 mel bands


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=40) (Slaney scale and area normalisation),
    written out so that a worker need not import librosa (seconds of numba start-up)."""
    fft_hz = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    gaps = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / gaps[:-1, None]
    upper = ramps[2:] / gaps[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:N_MELS + 2] - mel_hz[:N_MELS]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)  # periodic Hann, as librosa's


def mel_frames(wav: np.ndarray) -> np.ndarray:
    """resemblyzer's mel spectrogram (frames x 40): `resemblyzer.audio.wav_to_mel_spectrogram`,
    i.e. librosa's centred STFT (zero padding) and mel filter bank, in numpy (librosa's einsum
    there took ~30 ms a line, twice the encoder's own time). Equal to it within float rounding."""
    wav = np.asarray(wav, np.float32)
    padded = np.pad(wav, N_FFT // 2, mode="constant")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(padded, (n_frames, N_FFT), (padded.strides[0] * HOP, padded.strides[0]))
    power = np.abs(np.fft.rfft(frames * _window(), axis=1)).astype(np.float32) ** 2
    return (power @ mel_basis().T).astype(np.float32)


def _partials(speech: np.ndarray) -> np.ndarray:
    """The 1.6 s mel windows resemblyzer's `embed_utterance` averages (same slices, same padding)."""
    wav_slices, mel_slices = _encoder().compute_partial_slices(len(speech), 1.3, 0.75)
    if wav_slices[-1].stop >= len(speech):
        speech = np.pad(speech, (0, wav_slices[-1].stop - len(speech)), "constant")
    mel = mel_frames(speech)
    return np.stack([mel[s] for s in mel_slices])


BATCH = 64  # partial windows per forward pass of the encoder


def embed_many(speeches: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """`embed_speech` of many utterances, their windows run through the encoder in batches
    (resemblyzer embeds one utterance per call: 3x the time on a CPU)."""
    import torch

    owners: list[int] = []
    windows: list[np.ndarray] = []
    for i, speech in enumerate(speeches):
        if len(speech) < MIN_SPEECH_S * SAMPLE_RATE:
            continue
        parts = _partials(_normalise_volume(speech))
        windows.extend(parts)
        owners.extend([i] * len(parts))
    out: list[np.ndarray | None] = [None] * len(speeches)
    if not windows:
        return out
    encoder = _encoder()
    stacked = np.stack(windows)
    embedded = []
    with torch.no_grad():
        for k in range(0, len(stacked), BATCH):
            embedded.append(encoder(torch.from_numpy(stacked[k:k + BATCH])).numpy())
    partial = np.concatenate(embedded)
    owner = np.asarray(owners)
    for i in np.unique(owner):
        raw = partial[owner == i].mean(axis=0)
        out[int(i)] = (raw / np.linalg.norm(raw, 2)).astype(np.float32)
    return out


def embed_speech(speech: np.ndarray) -> np.ndarray | None:
    """One L2-normalised 256-d embedding, or None when there is too little speech."""
    return embed_many([speech])[0]


def line_embeddings(wav: np.ndarray, spans_s: Sequence[tuple[float, float]],
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [lines, 256] with zero rows for lines without speech, float32 [lines] seconds of speech)."""
    mask = speech_mask(wav) if mask is None else mask
    out = np.zeros((len(spans_s), VOICE_DIM), np.float32)
    speech_s = np.zeros(len(spans_s), np.float32)
    speeches = [speech_of_span(wav, mask, start, end) for start, end in spans_s]
    for i, (speech, emb) in enumerate(zip(speeches, embed_many(speeches), strict=True)):
        speech_s[i] = len(speech) / SAMPLE_RATE
        if emb is not None:
            out[i] = emb
    return out, speech_s
