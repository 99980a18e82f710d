"""What the benchmark callers say and the noise they make: espeak-ng speech (simulator/speech.py) trimmed
to its voiced part, turns with inserted mid-turn pauses, noise-only tracks (car, hiss, babble, cough,
music; sox where it can make them) through a phone channel, and backchannels ("mhm", "okay")."""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass

import numpy as np

from simulator.speech import VOICE_RMS, render_speech, voiced_only

# what the agent session receives on a real call: LiveKit's room input hands it 24 kHz frames (the
# 48 kHz Opus from livekit-sip is resampled natively, before Python), so no Python-side resampling
CALLER_RATE = 24000
FRAME = CALLER_RATE // 50  # 20 ms, the microphone's frame and CallerEar's voice test unit

# Distinct voices so the corpus is not one speaker's rhythm
CALLER_VOICES = ("en-gb", "en-us", "en-gb-x-rp", "en+f3", "en-us+m3", "en-gb-scotland")


def trimmed(pcm: bytes, rate: int = CALLER_RATE) -> bytes:
    """The voiced stretch only (see simulator.speech.voiced_only)."""
    return voiced_only(pcm, rate, VOICE_RMS)


def speech(text: str, voice: str = "en-gb", rate: int = CALLER_RATE) -> bytes:
    """One caller utterance at `rate`, starting and ending on voice."""
    return trimmed(render_speech(text, rate, voice=voice), rate)


def silence(ms: float) -> bytes:
    return bytes(2 * int(CALLER_RATE * ms / 1000))


@dataclass
class CallerTurn:
    """A caller turn: its audio, what it 'says' (for the simulator's transcript queue), and the
    pauses inside it (ms), so a commit before `voiced_s` has elapsed is a premature end of turn."""

    name: str
    text: str
    pcm: bytes
    pauses_ms: list[int]

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / CALLER_RATE


def paused_turn(name: str, pieces: list[str], pauses_ms: list[int], voice: str) -> CallerTurn:
    """Pieces of one sentence joined by silences (the caller thinking, reading digits off a card)."""
    assert len(pauses_ms) == len(pieces) - 1
    pcm = bytearray(speech(pieces[0], voice))
    for piece, pause in zip(pieces[1:], pauses_ms, strict=True):
        pcm += silence(pause)
        pcm += speech(piece, voice)
    return CallerTurn(name, " ".join(pieces), bytes(pcm), list(pauses_ms))


# Turns whose natural pauses a hasty end-of-turn decision would cut: phone numbers read in groups,
# hesitations, addresses, names spelled out, card/reference numbers.
_PAUSED_TURNS: list[tuple[str, list[str]]] = [
    ("phone number", ["My number is five five five", "two one three", "four four nine eight"]),
    ("phone number 2", ["You can reach me on oh seven seven", "nine four six", "one two three eight"]),
    ("hesitation", ["Um,", "let me check", "I think it was the fourteenth"]),
    ("hesitation 2", ["So I was wondering if", "uh", "if you do emergency callouts"]),
    ("address", ["I live at four twelve Oak Street", "apartment three B", "in Springfield"]),
    ("address 2", ["It's the house on Maple Avenue", "number twenty seven", "near the school"]),
    ("spelling", ["My last name is Kowalski", "K O W", "A L S K I"]),
    ("date", ["Could I come in on", "hmm", "Thursday afternoon maybe"]),
    ("reference", ["The booking code is", "A B seven", "nine two"]),
    ("insurance", ["My insurance is with", "um", "Blue Shield I think"]),
    ("reason", ["I have a leak under the sink", "and", "the cabinet is getting wet"]),
    ("email", ["My email is jane dot doe", "at example", "dot com"]),
]


def paused_corpus(seed: int = 5, voices: tuple[str, ...] = CALLER_VOICES[:2]) -> list[CallerTurn]:
    """Every paused turn in each voice, with pauses drawn from 600-900 ms (seeded, repeatable)."""
    rng = random.Random(seed)
    turns = []
    for voice in voices:
        for name, pieces in _PAUSED_TURNS:
            pauses = [rng.randint(600, 900) for _ in pieces[1:]]
            turns.append(paused_turn(f"{name} ({voice})", pieces, pauses, voice))
    return turns


# Plain requests for the response-gap runs: one breath, no pauses
PLAIN_LINES = [
    "Hi, I'd like to book a cleaning for next Tuesday.",
    "What time do you open on Saturday?",
    "How much is a filling?",
    "Do you take new patients?",
    "Can I move my appointment to Friday?",
    "Is there parking near the office?",
    "I need someone to look at my water heater.",
    "Great, that works for me, thanks.",
]

BARGE_IN_LINES = [
    "Sorry, wait, actually I meant Thursday.",
    "Hold on, can I ask something else?",
    "No no, that's not what I said.",
    "Excuse me, one second please.",
]


# ---- noise-only caller tracks -----------------------------------------------------------------

def _at_rms(x: np.ndarray, rms: float) -> np.ndarray:
    cur = float(np.sqrt(np.mean(x * x))) or 1.0
    return x * (rms / cur)


def _pcm(x: np.ndarray) -> bytes:
    return np.clip(x, -32767, 32767).astype(np.int16).tobytes()


SPEECH_RMS = 2600.0  # espeak-ng voiced level at our rates (about -22 dBFS)


def speech_level(pcm: bytes) -> float:
    """The level of the speech in `pcm` (PCM16 at CALLER_RATE): the RMS of its 20 ms frames within 20 dB
    of its loudest tenth, so the pauses between words do not lower it."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    frames = x[: x.size - x.size % FRAME].reshape(-1, FRAME)
    levels = np.sqrt(np.mean(frames * frames, axis=1))
    loud = levels[levels >= np.percentile(levels, 90) / 10]
    return float(np.sqrt(np.mean(loud * loud)))


def car_noise(seconds: float, snr_db: float = 15.0, seed: int = 1) -> bytes:
    """Brown noise (road rumble) plus a wandering engine hum, `snr_db` below caller speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * CALLER_RATE)
    brown = np.cumsum(rng.standard_normal(n))
    # leak the integrator so it stays bounded (a first-order high-pass near 20 Hz)
    brown -= np.convolve(brown, np.ones(2400) / 2400, mode="same")
    t = np.arange(n) / CALLER_RATE
    rpm = 40 + 8 * np.sin(2 * np.pi * 0.1 * t)
    hum = np.sin(2 * np.pi * np.cumsum(rpm) / CALLER_RATE) + 0.5 * np.sin(4 * np.pi * np.cumsum(rpm) / CALLER_RATE)
    x = _at_rms(brown, 1.0) + 0.5 * _at_rms(hum, 1.0)
    return _pcm(_at_rms(x, SPEECH_RMS * 10 ** (-snr_db / 20)))


_BABBLE_TEXT = [
    "and then she told me the whole story about the trip to the coast last summer",
    "we should really get the quarterly numbers over to finance before friday",
    "did you see the game last night it went to overtime again",
    "I'll have the soup and a side salad please with the dressing on the side",
    "the train was delayed so I ended up walking most of the way home",
    "they are thinking about painting the kitchen a lighter colour this spring",
]


def babble(seconds: float, snr_db: float = 20.0, talkers: int = 5, seed: int = 2) -> bytes:
    """Background voices (a café, an open office): several espeak voices mixed, `snr_db` below speech."""
    rng = random.Random(seed)
    n = int(seconds * CALLER_RATE)
    mix = np.zeros(n, dtype=np.float32)
    for k in range(talkers):
        voice = CALLER_VOICES[k % len(CALLER_VOICES)]
        track = np.zeros(0, dtype=np.float32)
        while len(track) < n + CALLER_RATE:
            text = rng.choice(_BABBLE_TEXT)
            piece = np.frombuffer(render_speech(text, CALLER_RATE, voice=voice), dtype=np.int16)
            track = np.concatenate([track, piece.astype(np.float32), np.zeros(rng.randint(0, 9600), np.float32)])
        offset = rng.randint(0, CALLER_RATE)
        mix += track[offset : offset + n]
    return _pcm(_at_rms(mix, SPEECH_RMS * 10 ** (-snr_db / 20)))


def coughs(seconds: float, every_s: tuple[float, float] = (3.0, 6.0), seed: int = 3) -> bytes:
    """Short loud bursts at speech level (a cough, a door, a bump of the handset) in silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * CALLER_RATE)
    x = np.zeros(n, dtype=np.float32)
    at = rng.uniform(*every_s)
    while (start := int(at * CALLER_RATE)) < n:
        length = int(rng.uniform(0.15, 0.35) * CALLER_RATE)
        burst = rng.standard_normal(length).astype(np.float32)
        burst = np.convolve(burst, np.ones(6) / 6, mode="same")  # duller than white noise
        env = np.exp(-np.arange(length) / (0.08 * CALLER_RATE)) * (1 - np.exp(-np.arange(length) / 200))
        seg = _at_rms(burst * env, SPEECH_RMS * 1.5)
        x[start : start + length] += seg[: n - start]
        at += rng.uniform(*every_s)
    return _pcm(x)


def mixed(*tracks: bytes) -> bytes:
    """PCM16 tracks of one length played together."""
    total = sum(np.frombuffer(t, dtype=np.int16).astype(np.int32) for t in tracks)
    return np.clip(total, -32768, 32767).astype(np.int16).tobytes()


def _sox(
    args: list[str], pcm: bytes = b"", rate_in: int = CALLER_RATE, rate_out: int = CALLER_RATE, *, dither: bool = True
) -> bytes:
    """Run sox on raw PCM16 mono (or from nothing, `-n`, when `pcm` is empty), repeatably (`-R`): its
    white noise and its dither are the same on every run, so a test or a benchmark hears the same line
    each time."""
    raw = ["-e", "signed-integer", "-b", "16", "-c", "1", "-L"]
    source = ["-t", "raw", "-r", str(rate_in), *raw, "-"] if pcm else ["-n"]
    options = ["-R"] if dither else ["-R", "-D"]
    return subprocess.run(["sox", "-q", *options, *source, "-t", "raw", "-r", str(rate_out), *raw, "-", *args],
                          input=pcm or None, capture_output=True, check=True, timeout=120).stdout  # fmt: skip


def resample(pcm: bytes, rate_in: int, rate_out: int, *, dither: bool = True) -> bytes:
    """Raw PCM16 mono from one rate to another. sox dithers by default: random low bits (now the same on
    every run), which in a digitally silent pause moved the end-of-turn models' answers (up to 0.47 for
    Smart Turn between two runs); `dither=False` keeps silence silent."""
    return _sox([], pcm, rate_in, rate_out, dither=dither)


def phone_line(pcm: bytes) -> bytes:
    """What reaches the agent from a PSTN caller: 300-3400 Hz and G.711 mu-law at 8 kHz (as the turn
    corpus's phone channel), back at the session's 24 kHz as livekit-sip delivers it."""
    from bench.turn_corpus import phone_channel

    narrow = _sox([], pcm, rate_out=8000)
    return _sox([], phone_channel(narrow, 8000), rate_in=8000)


def hiss(seconds: float, snr_db: float = 20.0) -> bytes:
    """A bad line's white noise (sox `synth whitenoise`), `snr_db` below caller speech."""
    x = np.frombuffer(_sox(["synth", str(seconds), "whitenoise"]), dtype=np.int16).astype(np.float32)
    return _pcm(_at_rms(x, SPEECH_RMS * 10 ** (-snr_db / 20)))


# a I-vi-IV-V loop in plucked chords with a bass line: the shape of hold music, not a recording
_CHORDS = [("C4", "E4", "G4", "C3"), ("A3", "C4", "E4", "A2"), ("F3", "A3", "C4", "F2"), ("G3", "B3", "D4", "G2")]


def hold_music(seconds: float, snr_db: float = 15.0) -> bytes:
    """Music behind the caller (a radio, a shop's speakers): plucked chords synthesised by sox."""
    bar = b"".join(_sox(["synth", "0.5", *[a for n in chord for a in ("pluck", n)], "remix", "-"])
                   for chord in _CHORDS for _ in range(4))  # fmt: skip
    loop = np.frombuffer(bar, dtype=np.int16).astype(np.float32)
    x = np.tile(loop, int(seconds * CALLER_RATE / len(loop)) + 1)[: int(seconds * CALLER_RATE)]
    return _pcm(_at_rms(x, SPEECH_RMS * 10 ** (-snr_db / 20)))


BACKCHANNELS = ["mhm", "okay", "right", "uh huh", "yeah", "I see"]


def backchannels(seconds: float, every_s: tuple[float, float] = (4.0, 7.0), seed: int = 4) -> bytes:
    """A listening caller: "mhm", "okay", "right"... at speech level every few seconds, silence between."""
    rng = random.Random(seed)
    n = int(seconds * CALLER_RATE)
    out = bytearray()
    while len(out) < 2 * n:
        out += silence(rng.uniform(*every_s) * 1000)
        out += speech(rng.choice(BACKCHANNELS), rng.choice(CALLER_VOICES[:2]))
    return bytes(out[: 2 * n])


# the caller's line while the agent talks: noise (should never stop the agent) and backchannels (should
# not either, or the agent goes on where it paused); SNRs are a phone's, all through the phone channel
NOISES = {
    "car 15 dB": car_noise,
    "hiss 20 dB": hiss,
    "babble 20 dB": babble,
    "babble 10 dB": lambda s: babble(s, snr_db=10.0),
    "music 15 dB": hold_music,
    "cough": coughs,
    # a cough or a bump over a steady noise, where the caller's voice well above the noise counts as speech
    "hiss 20 dB, coughs": lambda s: mixed(hiss(s), coughs(s)),
}
CALLER_SOUNDS = {**NOISES, "backchannels": backchannels}
