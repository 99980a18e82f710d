"""The caller's VAD and background voices: a café's babble 10 dB below the caller (espeak-ng talkers,
through a phone channel) is no speech to the call's VAD, so it neither pauses the agent nor holds a
turn open; the caller speaking over that babble is."""

from __future__ import annotations

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import vad
from livekit.plugins import silero

from agent.livekit_internals import own_vad
from agent.settings import load_settings
from bench.audio import CALLER_RATE, FRAME, babble, mixed, phone_line, speech, speech_level
from bench.turn_taking import noise_bed

BABBLE_ONLY_S = 8.0


async def _vad_events(pcm: bytes) -> list[vad.VADEvent]:
    """What the call's VAD, with the default noise gate, makes of `pcm` (its timestamps are audio time,
    samples processed, not the wall clock)."""
    settings = load_settings(openai_api_key="sim")
    stream = own_vad(silero.VAD.load(min_silence_duration=settings.vad_min_silence_duration),
                     noise_gate_db=settings.noise_gate_db).stream()  # fmt: skip
    for i in range(0, len(pcm) // 2 - FRAME + 1, FRAME):
        stream.push_frame(rtc.AudioFrame(pcm[2 * i : 2 * (i + FRAME)], CALLER_RATE, 1, FRAME))
    stream.end_input()
    return [ev async for ev in stream]


async def _speech_starts(pcm: bytes) -> list[float]:
    """Where (s into `pcm`) the call's VAD hears speech begin."""
    return [ev.timestamp - ev.speech_duration for ev in await _vad_events(pcm) if ev.type == vad.VADEventType.START_OF_SPEECH]


@pytest.mark.parametrize("snr_db", [10.0, 20.0])
async def test_background_voices_are_not_speech_but_the_caller_over_them_is(snr_db: float) -> None:
    line = speech("Sorry, can I ask you something else?", "en-us")
    seconds = BABBLE_ONLY_S + len(line) / 2 / CALLER_RATE + 1.0
    background = babble(seconds, snr_db=snr_db)
    caller = np.zeros(len(background) // 2, dtype=np.int16)
    at = int(BABBLE_ONLY_S * CALLER_RATE)
    caller[at : at + len(line) // 2] = np.frombuffer(line, dtype=np.int16)
    starts = await _speech_starts(phone_line(mixed(background, caller.tobytes())))
    assert starts and all(t > BABBLE_ONLY_S - 0.3 for t in starts), starts


def test_the_gate_decides_every_frame_as_the_percentile_of_its_window_says() -> None:
    """The background is the 25th percentile of the last 3 s of levels, and it is steady where that is
    within STEADY_DB of their 5th, to the bit: the same decisions on every frame as np.percentile over
    that window, through a steady noise from the start, then silence, a noise that comes and goes, and a caller talking on (whose frames count once in eight)."""
    from collections import deque

    import agent.noise_gate as gates
    from agent.noise_gate import LineBackground

    rng = np.random.default_rng(7)
    gate = LineBackground(margin_db=6.0)
    window: deque[float] = deque(maxlen=150)  # 3 s of 20 ms frames
    above = 0
    loudness = [300] * 120 + [0] * 40 + [300] * 200 + [3000] * 300 + [200] * 100 + [5] * 50 + [4000] * 60
    for level in loudness:
        pcm = (rng.standard_normal(320) * level).astype(np.int16)
        rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64))))
        low, p25 = np.percentile(window, [5.0, 25.0]) if window else (0.0, 0.0)
        steady = (len(window) * 0.02 >= gates.STEADY_LEARNT_S and low >= gates.QUIETEST_BACKGROUND_RMS
                  and p25 <= low * 10 ** (gates.STEADY_DB / 20))  # fmt: skip
        expected = rms >= max(p25, gates.QUIETEST_BACKGROUND_RMS) * 10 ** (6.0 / 20)
        above += expected
        if not expected or above % gates.ABOVE_BACKGROUND_WEIGHT == 0:
            window.append(rms)
        assert gate.audible(pcm, 0.02) == expected
        assert gate.steady == steady


async def _speech_stretches(pcm: bytes) -> list[tuple[float, float]]:
    """(start, end) s into `pcm` of each stretch the call's VAD hears as speech."""
    out, start = [], None
    for ev in await _vad_events(pcm):
        if ev.type == vad.VADEventType.START_OF_SPEECH:
            start = ev.timestamp - ev.speech_duration
        elif ev.type == vad.VADEventType.END_OF_SPEECH and start is not None:
            out.append((round(start, 2), round(ev.timestamp - ev.silence_duration, 2)))
            start = None
    return out


NOISY_LINES = ["quiet", "car 15 dB", "hiss 20 dB"]  # the quiet line and two of bench.turn_taking's NOISE_BEDS


def _on_the_line(phrases: list[bytes], pauses: list[float], line: str) -> tuple[bytes, list[tuple[float, float]]]:
    """The caller's `phrases` with `pauses` (s) between, after 3 s of the line alone and with 1 s after,
    through the phone channel and over `line` (one of NOISY_LINES), and where (s) each phrase is."""
    at = 3 * CALLER_RATE
    parts, spans, pos = [np.zeros(at)], [], at
    for phrase, pause in zip(phrases, [*pauses, 1.0], strict=True):
        parts.append(np.frombuffer(phrase, dtype=np.int16).astype(np.float64))
        spans.append((pos / CALLER_RATE, (pos + len(phrase) // 2) / CALLER_RATE))
        gap = int(pause * CALLER_RATE)
        parts.append(np.zeros(gap))
        pos += len(phrase) // 2 + gap
    said = phone_line(np.concatenate(parts).astype(np.int16).tobytes())
    if line != "quiet":
        # set after the phone channel, as a caller's line has it (the band takes most of a car's rumble)
        said = mixed(said, noise_bed(line, speech_level(said))[: len(said)])
    return said, spans


@pytest.mark.parametrize("line", NOISY_LINES)
async def test_a_caller_over_a_noisy_line_is_heard_whole_and_their_pause_as_one(line: str) -> None:
    """Two phrases with a 0.8 s pause between, over car noise or hiss 15-20 dB under the caller, after
    3 s of the line alone: the VAD hears two stretches of speech, as on a quiet line, not the phrases'
    vowels one by one (the softer half of the caller's speech is under the gate's threshold there)."""
    said, spans = _on_the_line([speech("I was wondering if you could send someone out", "en-us"),
                                speech("to look at my water heater this week", "en-us")], [0.8], line)  # fmt: skip
    heard = await _speech_stretches(said)
    assert len(heard) == 2, heard
    pause_at = spans[0][1]
    assert heard[0][1] <= pause_at + 0.4 and heard[1][0] >= pause_at + 0.5, heard


@pytest.mark.parametrize("snr_db", [10.0, 20.0])
def test_a_cafe_from_the_calls_first_moment_reaches_the_vad_only_until_it_is_learnt(snr_db: float) -> None:
    """At a call's first frames the background is not known yet, so they pass; the caller's hangover
    must not hold that open (it let 0.41 s of voices through, enough for Silero to interrupt the
    greeting)."""
    from agent.noise_gate import LineBackground

    gate = LineBackground(load_settings(openai_api_key="sim").noise_gate_db)
    line = phone_line(babble(10.0, snr_db=snr_db))
    passed = []
    for i in range(0, len(line) // 2 - FRAME + 1, FRAME):
        frame = rtc.AudioFrame(line[2 * i : 2 * (i + FRAME)], CALLER_RATE, 1, FRAME)
        passed.append(gate.heard(frame) is frame)
    assert sum(passed) * 0.02 <= 0.2, [i for i, p in enumerate(passed) if p]


@pytest.mark.usefixtures("recorded_voice")
@pytest.mark.parametrize("line", NOISY_LINES)
async def test_a_number_dictated_over_steady_noise_is_heard_as_on_a_quiet_line(line: str) -> None:
    """A phone number in a human voice (Asterisk's recordings), three groups with 0.5 and 0.7 s between,
    over car noise or hiss after 3 s of the line alone: each silence the VAD hears inside the number is
    one of its two pauses, no more than 0.25 s longer than it is, or a gap inside a group shorter than
    0.25 s (the quiet line's own gaps between the recorded words). The gate stands aside for a steady background, which Silero does
    not take for speech: gated, the caller's voice cleared its threshold only a frame or two at a time
    over car noise, and the VAD heard the number in pieces with pauses long enough to end the turn."""
    from simulator.recordings import recorded_speech

    groups = [recorded_speech(g, CALLER_RATE) for g in ("five oh three", "five five five", "oh one eight seven")]
    pauses = [0.5, 0.7]
    said, spans = _on_the_line(groups, pauses, line)
    heard = await _speech_stretches(said)
    assert heard and heard[0][0] < spans[0][0] + 0.3 and heard[-1][1] > spans[-1][1] - 0.3, (heard, spans)
    for (_, end), (start, _) in zip(heard, heard[1:], strict=False):
        pause = next((p for p, (a, b) in zip(pauses, zip(spans, spans[1:], strict=False), strict=True) if end < b[0] and start > a[1]), None)
        assert start - end <= (0.25 if pause is None else pause + 0.25), (heard, spans)


@pytest.mark.usefixtures("recorded_voice")
async def test_a_soft_letter_after_a_long_pause_over_hiss_is_heard_where_it_begins() -> None:
    """A confirmation code spelled in the human voice with pauses of 2.05 and 2.48 s, each followed by a
    soft "u", over hiss 20 dB under the caller: the VAD hears each pause at most 0.3 s longer than it
    is. With Silero's usual activation threshold the hiss kept the "u" under it: both pauses were heard
    0.6-0.75 s longer, the second past the 3 s that a dictated code's pause may last before it is
    answered (DICTATION_HOLD_SECONDS), so the agent spoke into the caller's code."""
    from simulator.recordings import recorded_speech

    groups = [recorded_speech(g, CALLER_RATE) for g in ("a w", "u k", "u eight")]
    pauses = [2.05, 2.48]
    said, spans = _on_the_line(groups, pauses, "hiss 20 dB")
    heard = await _speech_stretches(said)
    for pause, (before, after) in zip(pauses, zip(spans, spans[1:], strict=False), strict=True):
        silences = [b[0] - a[1] for a, b in zip(heard, heard[1:], strict=False) if a[1] < after[0] and b[0] > before[1]]
        assert silences and max(silences) <= pause + 0.3, (pause, heard, spans)


@pytest.mark.parametrize("floor_rms", [60.0, 150.0])  # -61 and -53 dBFS once through the phone band
async def test_a_cough_on_a_quiet_line_with_a_faint_steady_floor_is_not_speech(floor_rms: float) -> None:
    """A quiet line is rarely digital silence: comfort noise or a room's hum sits around -60 dBFS,
    steady. A cough or a bump of the handset on it is far more than NOISE_GATE_DB above that floor,
    and still no speech: only over a noise the caller has to talk over (NOISY_LINE_RMS) does a sound
    well above the background count as the caller's voice whatever Silero says."""
    from bench.audio import coughs

    seconds = 20.0
    floor = np.random.default_rng(11).standard_normal(int(seconds * CALLER_RATE)) * floor_rms
    line = np.frombuffer(phone_line(np.clip(floor, -32768, 32767).astype(np.int16).tobytes()), dtype=np.int16)
    said = mixed(line.tobytes(), phone_line(coughs(seconds))[: 2 * len(line)])
    assert await _speech_stretches(said) == []


async def test_coughs_over_hiss_with_no_caller_voice_before_them_are_not_speech() -> None:
    """A cough or a bump is as loud over a steady noise as the caller's voice; only as the caller goes
    on after a pause (within RESUME_S of Silero hearing their voice) is such a sound taken for it. Read
    at any time, coughs over hiss paused the agent's replies 13 times a minute."""
    from bench.audio import NOISES

    assert await _speech_stretches(phone_line(NOISES["hiss 20 dB, coughs"](20.0))) == []


def test_after_a_flush_silero_reads_the_marks_of_the_frames_after_it() -> None:
    """The gate marks each frame where the caller stood above a steady noise as it is pushed; Silero's
    loop reads the marks later, window by window. A flush (LiveKit's pipeline sends one on an
    out-of-band end of turn) makes the loop drop the frames it has not read: their marks go too, or
    every later window would be judged by a frame 60 ms older."""
    from agent.noise_gate import LineBackground

    rng = np.random.default_rng(5)

    def frame(rms: float) -> rtc.AudioFrame:
        return rtc.AudioFrame((rng.standard_normal(480) * rms).astype(np.int16).tobytes(), CALLER_RATE, 1, 480)

    def line(flushed: bool) -> LineBackground:
        gate = LineBackground(load_settings(openai_api_key="sim").noise_gate_db)
        for _ in range(150):
            gate.heard(frame(400))  # 3 s of hiss at about -38 dBFS: steady, and a noise to talk over
        for _ in range(3):
            gate.heard(frame(4000))  # the caller, 20 dB above it
        if flushed:
            gate.mark_flush()
        for _ in range(10):
            gate.heard(frame(400))
        assert not any(gate.voice_over_steady_noise(0.02, True) for _ in range(150))
        return gate

    unflushed = line(False)
    assert [unflushed.voice_over_steady_noise(0.02, True) for _ in range(4)] == [True, True, True, False]
    flushed = line(True)
    flushed.forget_unread()  # Silero's loop reached the flush with the caller's three frames unread
    flushed.heard(frame(4000))  # the caller again, after the ten frames of hiss since the flush
    assert [flushed.voice_over_steady_noise(0.02, True) for _ in range(11)] == [False] * 10 + [True]


async def test_the_calls_vad_runs_silero_on_its_own_loop_and_hears_what_silero_does() -> None:
    """The call's VAD runs each window's inference on the call's event loop, not on a thread of its
    executor, gated or not; ungated, it hears a caller as LiveKit's own Silero stream does: the same
    events at the same audio times, and the same probabilities within what two runs of Silero's own
    stream on the same audio differ by (up to ~0.02)."""
    import threading

    pcm = phone_line(speech("Hi, I'd like to book a drain cleaning.", "en-us") + bytes(CALLER_RATE)
                     + speech("Tomorrow morning, if you can.", "en-us") + bytes(CALLER_RATE))  # fmt: skip
    shared = silero.VAD.load(min_silence_duration=0.15)

    async def events(vad_obj: vad.VAD, threads: set[str] | None = None) -> list[tuple[str, float, float]]:
        stream = vad_obj.stream()
        if threads is not None:
            model = stream._model

            class Watched:  # the stream's model, noting the thread each window's inference runs on
                def __getattr__(self, name: str) -> object:
                    return getattr(model, name)

                def __call__(self, window: np.ndarray) -> float:
                    threads.add(threading.current_thread().name)
                    return model(window)

            stream._model = Watched()
        for i in range(0, len(pcm) // 2 - FRAME + 1, FRAME):
            stream.push_frame(rtc.AudioFrame(pcm[2 * i : 2 * (i + FRAME)], CALLER_RATE, 1, FRAME))
        stream.end_input()
        return [(ev.type.name, round(ev.timestamp, 4), round(ev.probability, 6)) async for ev in stream]

    ran_on: set[str] = set()
    gated = await events(own_vad(shared, noise_gate_db=6.0), ran_on)
    ours = await events(own_vad(shared, noise_gate_db=0.0), ran_on)
    theirs = await events(silero.VAD(session=shared._onnx_session, opts=shared._opts))
    assert ran_on == {threading.current_thread().name}
    assert "START_OF_SPEECH" in [e[0] for e in gated]
    assert [e[0] for e in ours].count("START_OF_SPEECH") == 2
    assert [e[:2] for e in ours] == [e[:2] for e in theirs]
    assert max(abs(a[2] - b[2]) for a, b in zip(ours, theirs, strict=True)) < 0.05
