"""Smart Turn v3.2, an open audio end-of-turn model, as a LiveKit streaming turn detector.

Smart Turn (pipecat-ai/smart-turn, BSD-2-Clause) reads the last 8 s of the caller's voice as a Whisper
log-mel spectrogram and says how likely their turn is over, from the audio alone: a trailing "and..."
or a rising "unfinished" tone reads as not done, whatever the silence. Its 8.7 MB ONNX ships inside the
`pipecat-ai` wheel; rather than depend on pipecat (and its dependencies) for one file, `model_file()`
downloads that wheel from PyPI once, checks it against the digest below, keeps only the ONNX under
~/.cache/receptionist/models/, and the features are computed here with numpy. onnxruntime is already
ours (Silero).

`SmartTurnDetector` plugs into LiveKit's audio turn-detection path (the one its own local model uses):
the session streams the caller's audio to it (16 kHz), and when the VAD hears a pause it asks for a
prediction; below `threshold` the turn is held open up to the session's max endpointing delay, above it
the turn ends at the min delay. One model per process, one thread, as Silero."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import weakref
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from agent.livekit_internals import (
    StreamingTurnDetector,
    StreamingTurnDetectorStream,
    TurnDetectorOptions,
    drain_turn_audio,
    resolve_turn_prediction,
    turn_thresholds,
)

log = logging.getLogger("receptionist.smart_turn")

MODEL = "smart-turn-v3.2"
WHEEL = "pipecat-ai==1.14.0"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
THRESHOLD = 0.5  # the model's own cut: above it the turn is complete
TRAILING_S = 0.2  # silence after the caller's last sound the model is shown
SOUND_RMS_FLOOR = 1e-3  # -60 dBFS: quieter 10 ms frames are never the caller's voice

RATE = 16000
SECONDS = 8  # the model reads the last 8 s, zero-padded in front when shorter
N_FFT = 400  # Whisper's features: 25 ms windows every 10 ms, 80 mel bands to 8 kHz
HOP = 160
N_MELS = 80


def model_file() -> Path:
    """The ONNX, fetched from PyPI into the user's cache the first time (~12 MB wheel, kept: 8.7 MB)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "receptionist" / "models" / MODEL
    path = root / f"{MODEL}-cpu.onnx"
    if path.exists():
        return path
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smart-turn-") as tmp:
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp, WHEEL],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        wheels = list(Path(tmp).glob("*.whl"))
        if got.returncode != 0 or not wheels:
            raise RuntimeError(f"cannot download {WHEEL} for the Smart Turn model: {got.stderr.strip()[-400:]}")
        data = zipfile.ZipFile(wheels[0]).read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{MEMBER} in {WHEEL} has sha256 {digest}, expected {SHA256}")
    # each process writes its own part file: two fetching at once (workers, test processes) each
    # rename a whole file into place, never one the other is still writing
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    part.write_bytes(data)
    part.replace(path)
    return path


def _mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1): triangles evenly spaced on the Slaney mel scale (linear below 1 kHz,
    logarithmic above), each scaled to unit area, as Whisper's front end builds them."""

    def to_mel(hz: np.ndarray) -> np.ndarray:
        hz = np.asarray(hz, dtype=np.float64)
        linear = hz * 3.0 / 200.0
        return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * 27.0 / np.log(6.4), linear)

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return np.where(mel >= 15.0, 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0), mel * 200.0 / 3.0)

    edges = to_hz(np.linspace(to_mel(0.0), to_mel(RATE / 2), N_MELS + 2))
    bins = np.linspace(0, RATE // 2, N_FFT // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return triangles * (2.0 / (upper - lower))


_FILTERS = _mel_filters()
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(N_MELS, frames) float32 features of `audio` (float, 16 kHz): the waveform scaled to zero mean and
    unit variance, a centred STFT (reflect-padded), power, mel, log10 floored at 1e-10, clamped to 8
    below the loudest, then (x + 4) / 4. The last STFT frame is dropped, as Whisper does: 8 s gives 800."""
    x = np.asarray(audio, dtype=np.float64)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    n = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n, N_FFT), strides=(padded.strides[0] * HOP, padded.strides[0]), writeable=False
    )
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    mel = np.log10(np.maximum(_FILTERS @ power.T, 1e-10))[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


def _to_last_sound(audio: np.ndarray) -> np.ndarray:
    """`audio` up to TRAILING_S after its last sound. The model reads a turn as pipecat runs it, after
    0.2 s of VAD silence; LiveKit asks after at least 0.25 s, plus the VAD's own lag, and on the model
    every extra 100 ms of silence reads as "finished" (a sentence cut at its middle word: 0.28 with
    0.2 s of silence after it, 0.77 with 0.3 s, 0.91 with 0.5 s; cut to 0.2 s, 0.53 whatever followed).
    A sound is a 10 ms frame above a tenth of the turn's loud frames (95th percentile), so a line's hiss
    is not one."""
    frame = RATE // 100
    n = len(audio) // frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    sounds = np.flatnonzero(rms > max(SOUND_RMS_FLOOR, 0.1 * np.percentile(rms, 95)))
    if len(sounds) == 0:
        return audio
    return audio[: (sounds[-1] + 1) * frame + int(TRAILING_S * RATE)]


class SmartTurnModel:
    """The ONNX session: one per process, one thread, shared by every call in it."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    @classmethod
    @functools.cache
    def load(cls) -> SmartTurnModel:
        return cls(model_file())

    def probability(self, audio: np.ndarray) -> float:
        """How likely the turn in `audio` (float32, 16 kHz, the caller's voice then the pause) is complete."""
        keep = RATE * SECONDS
        audio = _to_last_sound(audio)[-keep:]
        if len(audio) < keep:
            audio = np.pad(audio, (keep - len(audio), 0))
        (out,) = self._session.run(None, {"input_features": log_mel(audio)[None]})
        return float(np.asarray(out).reshape(-1)[0])


class SmartTurnDetector(StreamingTurnDetector):
    """Smart Turn in LiveKit's audio turn-detection path: `session.update_options(turn_detection=...)`
    or `AgentSession(turn_handling={"turn_detection": SmartTurnDetector()})`. The session's VAD must
    wait at least 0.25 s of silence (LiveKit checks)."""

    def __init__(self, *, threshold: float = THRESHOLD, model: SmartTurnModel | None = None) -> None:
        self._options = TurnDetectorOptions(sample_rate=RATE, thresholds=turn_thresholds(MODEL, threshold))
        super().__init__(opts=self._options)
        self._model = model or SmartTurnModel.load()

    @property
    def model(self) -> Any:
        return MODEL

    @property
    def provider(self) -> str:
        return "pipecat-ai/smart-turn"

    def stream(self, *, conn_options: Any = None) -> StreamingTurnDetectorStream:
        return StreamingTurnDetectorStream(
            detector=self, opts=self._options, transport=_Transport(self._model), model=MODEL, local_fallback=False
        )


class _Transport:
    """The caller's audio since the last turn boundary (the last 8 s of it), and a prediction over it in
    a thread when the session asks, as LiveKit's own local model is run."""

    def __init__(self, model: SmartTurnModel) -> None:
        self._model = model
        self._ring = np.zeros(RATE * SECONDS, dtype=np.float32)
        self._at = 0  # where the next sample goes
        self._filled = 0  # samples since the last turn boundary, up to the ring's length
        self._stream: weakref.ref[Any] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def session_id(self) -> str | None:
        return None

    def attach(self, stream: Any) -> None:
        self._stream = weakref.ref(stream)

    def detach(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def push_frame(self, frame: Any) -> None:
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1)
        size = len(self._ring)
        new = (pcm.astype(np.float32) / 32768.0)[-size:]
        first = min(len(new), size - self._at)
        self._ring[self._at : self._at + first] = new[:first]
        self._ring[: len(new) - first] = new[first:]
        self._at = (self._at + len(new)) % size
        self._filled = min(size, self._filled + len(new))

    def flush(self) -> None:
        self._filled = 0

    def audio(self) -> np.ndarray:
        """The samples since the last turn boundary (at most the last 8 s), oldest first."""
        ordered = np.concatenate([self._ring[self._at :], self._ring[: self._at]])
        return ordered[len(ordered) - self._filled :]

    def run_inference(self, request_id: str) -> None:
        task = asyncio.create_task(self._predict(request_id, self.audio()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _predict(self, request_id: str, audio: np.ndarray) -> None:
        started = time.monotonic()
        try:
            p = await asyncio.to_thread(self._model.probability, audio)
        except Exception:
            log.exception("Smart Turn prediction failed; the turn ends at the endpointing delay")
            p = 1.0
        stream = self._stream() if self._stream is not None else None
        if stream is not None:
            resolve_turn_prediction(stream, request_id, p, inference_duration=time.monotonic() - started)

    async def run(self) -> None:
        stream = self._stream() if self._stream is not None else None
        if stream is not None:
            await drain_turn_audio(stream)
