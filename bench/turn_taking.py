"""Turn taking on caller speech: `python -m bench.turn_taking [--material dictation|open] [--quick | --words | --noise | --patience | --slow-model]
[--language en|es|fr]`.

Two materials, each clean and through a simulated phone channel, with 0.2-2.5 s pauses inside turns:
`dictation` (bench/turn_corpus.py: one human voice dictating numbers, codes, spellings) and `open`
(bench/open_turns.py: open requests with fillers in a neural voice, whole sentences whose comma pauses
are stretched). The turns are played in real time into real AgentSessions against the Realtime
simulator, the receptionist's question asked before each turn; the simulator transcribes the groups
each commit holds TRANSCRIPTION_MS after it, as the real API transcribes each committed item. For
each detector setting and model delay: the false cut-off rate (agent voice at the caller's ear while
they are still mid-turn) against the gap the caller hears (end of their speech to the first agent
voice, model delay included). `--noise`: the same with car noise, background voices or hiss under the
calls. `--language es|fr`: dictation by a Spanish or French human voice, after the agent's question in
that language, to the business speaking English and that language. Writes
bench/results/turn_taking[_open][_words|_noise|_patience|_slow_model][_es|_fr][-quick].json and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench import open_turns, report, turn_corpus
from bench.audio import (
    CALLER_RATE,
    babble,
    car_noise,
    hiss,
    phone_line,
    resample,
    speech_level,
)
from bench.calls import (
    GREETING,
    BenchCall,
    Flavour,
    SimulatorThread,
    brain,
    quiet_logs,
    settings_for,
    speculation_counts,
    stats,
    vad_model,
    warm_model_voice,
)
from bench.turn_corpus import CorpusTurn, prompt, transcribed_parts, turn_audio
from simulator.script import to_steps
from simulator.server import RecordedEvent

MODEL_DELAYS_MS = (300, 600, 900)
_ONSET_SLACK_S = 0.05  # agent voice this close to the caller's last syllable is an answer, not a cut
READBACK = "Thanks, I have that."
GO_ON = "Anything else?"  # after the last turn
READBACKS = {"en": READBACK, "es": "Gracias, ya lo tengo.", "fr": "Merci, c'est noté."}
GO_ONS = {"en": GO_ON, "es": "¿Algo más?", "fr": "Autre chose?"}


def _vad_only(silence: float, delay: float) -> Flavour:
    """Silero VAD alone deciding the end of turn: one delay whatever the agent asked (no dictation
    pacing), speculative replies on as shipped."""
    return Flavour(f"VAD sil{silence}/ep{delay}", "ours", settings_for(
        vad_min_silence_duration=silence, min_endpointing_delay=delay, dictation_endpointing_delay=delay,
        dictation_hold_seconds=0, unfinished_hold_seconds=0))


OURS = Flavour("ours (defaults)", "ours")
# the pacing before numbers and codes were judged by their transcripts: a fixed 1.2 s for any dictation
OURS_FIXED = Flavour("ours, fixed 1.2 s dictation delay", "ours", settings_for(dictation_hold_seconds=0))
OURS_NO_SPEC = Flavour("ours, speculation off", "ours", settings_for(speculative_reply=False))
# the defaults before the words before a pause were read (UNFINISHED_HOLD_SECONDS)
OURS_NO_WORDS = Flavour("ours, words not read", "ours", settings_for(unfinished_hold_seconds=0))
OURS_NO_PATIENCE = Flavour("ours, no patience after a cut-off", "ours", settings_for(cut_off_patience_seconds=0))
OURS_NO_GATE = Flavour("ours, noise gate off", "ours", settings_for(noise_gate_db=0))
V1_MINI = Flavour("v1-mini ep0.2/sil0.25", "ours", settings_for(
    min_endpointing_delay=0.2, vad_min_silence_duration=0.25, max_endpointing_delay=2.5, dictation_hold_seconds=0,
    unfinished_hold_seconds=0),
    turn_detector="v1-mini")
# Smart Turn v3.2 (agent/smart_turn.py) as v1-mini above: alone, then under our dictation pacing (LiveKit
# needs 0.25 s of VAD silence before an audio model's prediction, so ours gives up its 0.15 s)
SMART_TURN = Flavour("Smart Turn v3.2 ep0.2/sil0.25", "ours", settings_for(
    min_endpointing_delay=0.2, vad_min_silence_duration=0.25, max_endpointing_delay=2.5, dictation_hold_seconds=0,
    unfinished_hold_seconds=0),
    turn_detector="smart-turn")
# what TURN_MODEL=v1-mini ships: the model on open sentences, our dictation pacing pinning both delays
OURS_V1_MINI = Flavour("ours, TURN_MODEL=v1-mini", "ours", settings_for(turn_model="v1-mini"))
OURS_SMART_TURN = Flavour("ours + Smart Turn v3.2 (sil0.25)", "ours", settings_for(vad_min_silence_duration=0.25),
                          turn_detector="smart-turn")
VAD_ONLY = [_vad_only(0.25, 0.3), _vad_only(0.25, 0.6), _vad_only(0.5, 0.9)]


def _audio_model(detector: str, threshold: float | None, delay: float, timeout: float) -> Flavour:
    """An audio end-of-turn model alone (no dictation pacing) at one operating point: its threshold,
    the decision delay after a likely end, and the timeout (max endpointing delay) after an unlikely one."""
    label = {"v1-mini": "v1-mini", "smart-turn": "Smart Turn v3.2"}[detector]
    shown = "" if threshold is None else f" th{threshold}"
    return Flavour(f"{label}{shown} ep{delay}/max{timeout}", "ours", settings_for(
        min_endpointing_delay=delay, vad_min_silence_duration=0.25, max_endpointing_delay=timeout,
        dictation_hold_seconds=0, unfinished_hold_seconds=0), turn_detector=detector, turn_threshold=threshold)  # type: ignore[arg-type]


# the operating points livekit/eot-bench found best for 10% and 5% false cut-offs on human turns
# (../shared/turn-taking.md), beside each model's own threshold at a short delay
AUDIO_MODELS = [_audio_model("v1-mini", 0.36, 0.5, 1.5), _audio_model("v1-mini", 0.43, 0.7, 2.0),
                _audio_model("smart-turn", 0.09, 0.7, 3.0), _audio_model("smart-turn", 0.2, 0.2, 2.5)]
FLAVOURS = [OURS, OURS_FIXED, OURS_NO_SPEC, *VAD_ONLY, V1_MINI, SMART_TURN, AUDIO_MODELS[2], OURS_SMART_TURN,
            OURS_V1_MINI]
OPEN_FLAVOURS = [OURS, OURS_NO_SPEC, *VAD_ONLY, V1_MINI, SMART_TURN, *AUDIO_MODELS, OURS_SMART_TURN, OURS_V1_MINI]
MATERIALS = {"dictation": turn_corpus.build, "open": open_turns.build}
# commit -> the caller's transcript; the real API's input transcription delay is not published
TRANSCRIPTION_MS = 500


def _to_caller_rate(pcm: bytes, rate: int) -> bytes:
    """Corpus audio at the rate LiveKit's room input hands a session."""
    return resample(pcm, rate, CALLER_RATE)


def warm_script_voice(turns: list[CorpusTurn]) -> None:
    """Render every line the script may say around these turns before the clock starts."""
    prompts = {prompt(t) for t in turns}
    lines = {GREETING, *prompts, *(f"{GREETING} {p}" for p in prompts)}
    for language in {t.language for t in turns}:
        readback, go_on = READBACKS[language], GO_ONS[language]
        lines |= {readback, go_on, f"{readback} {go_on}", *(f"{readback} {p}" for p in prompts)}
    warm_model_voice(sorted(lines))


def _script(turns: list[CorpusTurn]) -> list[dict[str, Any]]:
    """Greeting with the first question; each turn's replies are set as it starts (`_ask_next`)."""
    return [{"say": f"{GREETING} {prompt(turns[0])}"}]


def _ask_next(call: BenchCall, question: str, language: str = "en") -> None:
    """Whatever the model says from now on (the read-back, or a reply that cut the caller off) asks the
    next turn's question, so the next turn is paced for what it dictates however many replies this one
    took."""
    script = call.simt.sim.script(call.key)
    script.steps[script.cursor :] = to_steps([{"say": f"{READBACKS[language]} {question}"}] * 8)


async def _caller(call: BenchCall, turns: list[tuple[CorpusTurn, bytes]], rng: random.Random) -> list[dict[str, Any]]:
    await call.start()
    said = []
    for i, (turn, pcm) in enumerate(turns):
        _ask_next(call, prompt(turns[i + 1][0]) if i + 1 < len(turns) else GO_ONS[turn.language], turn.language)
        await asyncio.sleep(rng.uniform(0.4, 0.8))
        parts = transcribed_parts(turn)
        t = await call.say(turn.text, pcm, answer_within=6.0, parts=parts)
        heard = [s.first_voice for s in call.ear.segments if s.first_voice is not None
                 and t.start <= s.first_voice < t.end - _ONSET_SLACK_S]  # fmt: skip
        said.append({"turn": turn, "start": t.start, "end": t.end, "cut_at": heard[0] if heard else None,
                     "heard_voice": t.heard_voice, "key": call.key})
        # a reply still pending (the dictation delay plus the model) must not land in the next turn
        await call.wait_idle(settle=1.0, within=15)
    return said


_SPLIT_EVENTS = ("response.create", "response.output_audio.delta")


def gap_split(events: list[RecordedEvent], key: str, end: float, heard: float) -> dict[str, int] | None:
    """Where an answered turn's gap went, from the simulator's record of the call on `key` (times on
    the simulator's monotonic clock): `ask_ms`, the caller's last syllable -> the request for the reply
    that was heard (the caller's audio reaching the agent, its VAD and turn decision); `model_ms`, that
    request -> the reply's first audio leaving the model; `out_ms`, that audio -> the caller hearing its
    voice (the agent's output, and on a phone line WebRTC and livekit-sip). None when the heard reply
    cannot be told from the record."""
    mine = [e for e in events if e.key == key and end - 5.0 <= e.t <= heard and e.type in _SPLIT_EVENTS]
    first_audio: dict[str, float] = {}
    for e in mine:
        if e.direction == "server" and e.type == "response.output_audio.delta":
            first_audio.setdefault(e.event.get("response_id", ""), e.t)
    if not first_audio:
        return None
    audio_at = max(first_audio.values())  # the latest reply to start before the caller heard one
    asked = [e.t for e in mine if e.direction == "client" and e.type == "response.create" and e.t <= audio_at]
    if not asked:
        return None
    return {"ask_ms": round((asked[-1] - end) * 1000), "model_ms": round((audio_at - asked[-1]) * 1000),
            "out_ms": round((heard - audio_at) * 1000)}  # fmt: skip


def _hold_cut(turn: CorpusTurn, cut_after_s: float) -> int | None:
    """Which hold silence the agent's voice started in (or in the group after it: the caller's voice
    resumed before the reply reached them)."""
    holds = [s for s in turn.silences if s.label == "hold"]
    started = [i for i, s in enumerate(holds) if s.at_s <= cut_after_s]
    return started[-1] if started else None


async def run_point(
    simt: SimulatorThread, flavour: Flavour, audio: list[tuple[CorpusTurn, bytes]], calls: int, *, seed: int = 14,
    background: bytes = b"",
) -> dict[str, Any]:
    """The corpus through `calls` concurrent sessions of `flavour` on one simulator (one model delay),
    with `background` (the line's noise) under the whole of each call."""
    rng = random.Random(seed)
    shares = [audio[i::calls] for i in range(calls)]
    others = sorted({t.language for t, _ in audio} - {"en"})
    if len(others) > 1:
        raise ValueError(f"one language besides English at a time, not {others}")
    business = brain(*others)
    bench_calls = [BenchCall(simt, flavour, _script([t for t, _ in s]), background=background, business=business)
                   for s in shares]  # fmt: skip

    async def one(c: BenchCall, turns: list[tuple[CorpusTurn, bytes]], delay: float) -> list[dict[str, Any]]:
        await asyncio.sleep(delay)
        try:
            return await _caller(c, turns, random.Random(rng.random()))
        finally:
            await c.close()

    results = await asyncio.gather(*(one(c, s, rng.uniform(0, 1.5)) for c, s in zip(bench_calls, shares, strict=True)))
    rows, gaps, holds, holds_cut, unanswered = [], [], 0, 0, 0
    events = [e for e in simt.events() if e.type in _SPLIT_EVENTS]
    for said in results:
        for s in said:
            turn: CorpusTurn = s["turn"]
            n_holds = sum(x.label == "hold" for x in turn.silences)
            holds += n_holds
            cut_after = None if s["cut_at"] is None else round(s["cut_at"] - s["start"], 2)
            hold = None if cut_after is None else _hold_cut(turn, cut_after)
            holds_cut += hold is not None
            unanswered += s["heard_voice"] is None and cut_after is None
            answered = cut_after is None and s["heard_voice"] is not None
            gap_ms = (s["heard_voice"] - s["end"]) * 1000 if answered else None
            if gap_ms is not None:
                gaps.append(gap_ms)
            rows.append({"turn": turn.name, "kind": turn.kind, "cut_after_s": cut_after, "in_hold": hold,
                         "hold_ms": turn.silences[hold].ms if hold is not None else None,
                         "gap_ms": None if gap_ms is None else round(gap_ms),
                         "gap_split": gap_split(events, s["key"], s["end"], s["heard_voice"])
                         if answered else None})  # fmt: skip
    n = len(rows)
    cut = sum(r["cut_after_s"] is not None for r in rows)
    return {
        "flavour": flavour.name,
        "settings": flavour.describe(),
        "model_delay_ms": simt.sim.model_delay_ms,
        "turns": n,
        "turns_cut": cut,
        "turn_cut_rate": round(cut / n, 3) if n else None,
        "holds": holds,
        "holds_cut": holds_cut,  # a turn is cut once: the first hold the agent spoke into
        "hold_cut_rate": round(holds_cut / holds, 3) if holds else None,
        "gap_ms_uncut": stats(gaps),
        # numbers and codes (judged whole from their transcripts) apart from spellings, emails, addresses
        "by_kind": {
            group: {"turns": len(mine), "turns_cut": sum(r["cut_after_s"] is not None for r in mine),
                    "gap_ms_uncut": stats([r["gap_ms"] for r in mine if r["gap_ms"] is not None])}
            for group, mine in (("numbers and codes", [r for r in rows if r["kind"] in ("phone", "code")]),
                                ("other dictation", [r for r in rows if r["kind"] not in ("phone", "code")]))
        },  # fmt: skip
        "unanswered": unanswered,  # neither cut nor answered within 6 s of the end of the turn
        "speculation": speculation_counts(bench_calls, n),
        "per_turn": rows,
    }


# --noise: the line's own sound under every call, at phone SNRs below the corpus's speech, through the
# phone channel like the speech (each through it alone, then added: a real line codes them together)
NOISE_BEDS = {"car 15 dB": (car_noise, 15.0), "babble 20 dB": (babble, 20.0), "hiss 20 dB": (hiss, 20.0)}
BED_SECONDS = 60.0  # looped


def noise_bed(name: str, speech_rms: float) -> bytes:
    """NOISE_BEDS[name] through the phone channel, at CALLER_RATE, then its SNR below `speech_rms` (the
    corpus's phone-channel speech): what is left of it in the phone's band, at that level. (The band
    takes most of a car's rumble: set before it, "15 dB" came out 34 dB below the speech.)"""
    return phone_bed(*NOISE_BEDS[name], speech_rms)


def phone_bed(make: Callable[..., bytes], snr_db: float, speech_rms: float) -> bytes:
    """BED_SECONDS of `make(seconds, snr_db=...)` set `snr_db` below `speech_rms` after the phone channel,
    as noise_bed sets each of NOISE_BEDS."""
    x = np.frombuffer(phone_line(make(BED_SECONDS, snr_db=snr_db)), dtype=np.int16).astype(np.float64)
    x *= speech_rms * 10 ** (-snr_db / 20) / (float(np.sqrt(np.mean(x * x))) or 1.0)
    return np.clip(x, -32767, 32767).astype(np.int16).tobytes()


def _channel(ch: str) -> tuple[str, str | None]:
    """A grid channel's corpus channel and noise bed: "phone+car 15 dB" -> ("phone", "car 15 dB")."""
    corpus_ch, _, bed = ch.partition("+")
    return corpus_ch, bed or None


def _grid(
    quick: bool, material: str = "dictation", words: bool = False, noise: bool = False, language: str = "en",
    patience: bool = False, slow_model: bool = False,
) -> list[tuple[str, int, int, Flavour]]:
    """(channel, model delay, transcription delay, flavour): every setting on the phone channel at 600
    ms, ours at 300 and 900 ms, with a slower transcriber and on the clean recording, one point at a
    time (about 20 minutes on 2 cores: two points' 12 sessions at once let Silero fall behind real time
    on a shared machine, hiding pauses). --quick: the phone channel at 600 ms, four settings. Open
    sentences: their own settings (the audio models' operating points) at 600 ms, ours at 300 and 900
    ms and on the clean recording. --words: ours with and without the words before a pause read, and
    with v1-mini, at 600 ms, with the usual transcriber and one twice as slow (its transcript then
    comes after the model's first audio). --noise: ours on a quiet phone line and with each of NOISE_BEDS
    under the calls, and with the noise gate off under background voices. --language es|fr: ours, the
    fixed dictation delay and the VAD alone on the phone channel, and ours on the clean recording, at
    600 ms. --patience: ours with and without CUT_OFF_PATIENCE_SECONDS, twice each, interleaved, on
    the phone channel at 600 ms. --slow-model: ours with and without the words read, at a 900 ms model
    and an 800 ms transcriber (a pause's transcript later than the usual wait for it, before the
    model's first audio), ours twice."""
    t = TRANSCRIPTION_MS
    if slow_model:
        return [("phone", 900, 800, f) for f in (OURS, OURS_NO_WORDS, OURS)]
    if patience:
        return [("phone", 600, t, f) for _ in range(2) for f in (OURS, OURS_NO_PATIENCE)]
    if language != "en":
        return [("phone", 600, t, f) for f in (OURS, OURS_FIXED, VAD_ONLY[1])] + [("clean", 600, t, OURS)]
    if noise:
        return ([("phone", 600, t, OURS)] + [(f"phone+{bed}", 600, t, OURS) for bed in NOISE_BEDS]
                + [("phone+babble 20 dB", 600, t, OURS_NO_GATE)])  # fmt: skip
    if words:
        return [("phone", 600, tr, f) for tr in (t, 2 * t) for f in (OURS, OURS_NO_WORDS)] + [
            ("phone", 600, t, OURS_V1_MINI)]
    if quick:
        return [("phone", 600, t, f) for f in (OURS, OURS_FIXED, VAD_ONLY[1], V1_MINI)]
    if material == "open":
        return ([("phone", 600, t, f) for f in OPEN_FLAVOURS] + [("phone", d, t, OURS) for d in (300, 900)]
                + [("clean", 600, t, OURS), ("clean", 600, t, SMART_TURN)])  # fmt: skip
    return ([("phone", 600, t, f) for f in FLAVOURS] + [("phone", d, t, OURS) for d in (300, 900)]
            + [("phone", 600, 2 * t, OURS), ("clean", 600, t, OURS)])  # fmt: skip


async def run(
    quick: bool, *, material: str = "dictation", calls: int = 6, parallel: int = 1, words: bool = False,
    noise: bool = False, language: str = "en", patience: bool = False, slow_model: bool = False,
) -> dict[str, Any]:
    quiet_logs()
    root, corpus = turn_corpus.build(language=language) if material == "dictation" else MATERIALS[material]()
    grid = _grid(quick, material, words, noise, language, patience, slow_model)
    audio = {ch: [(t, _to_caller_rate(*turn_audio(root, t, ch))) for t in corpus]
             for ch in {_channel(ch)[0] for ch, _, _, _ in grid}}  # fmt: skip
    level = speech_level(b"".join(pcm for _, pcm in audio["phone"])) if noise else 0.0
    beds = {bed: noise_bed(bed, level) for ch, _, _, _ in grid if (bed := _channel(ch)[1])}
    sims = {(d, t): SimulatorThread(model_delay_ms=d, transcription_delay_ms=t) for _, d, t, _ in grid}
    for simt in sims.values():
        simt.start()
    warm_script_voice(corpus)
    for _, _, _, f in grid:
        vad_model(f.settings.vad_min_silence_duration)
    if any(f.turn_detector == "smart-turn" for _, _, _, f in grid):
        from agent.smart_turn import SmartTurnModel

        SmartTurnModel.load()  # fetched and loaded before the clock starts
    out: list[dict[str, Any]] = []
    try:
        for i in range(0, len(grid), parallel):
            batch = grid[i : i + parallel]
            done = await asyncio.gather(*(
                run_point(sims[d, t], f, audio[_channel(ch)[0]], calls, background=beds.get(_channel(ch)[1] or "", b""))
                for ch, d, t, f in batch
            ))  # fmt: skip
            for (ch, _, t, _), r in zip(batch, done, strict=True):
                r["channel"] = ch
                r["transcription_delay_ms"] = t
            out += done
            print_rows(done, title=f"turn taking on human speech, {i + len(batch)}/{len(grid)}")
    finally:
        for simt in sims.values():
            simt.stop()
    print_rows(out)
    return {
        "material": material,
        "language": language,
        "corpus": {"root": str(root), "turns": len(corpus), "seconds_per_channel": round(sum(t.seconds for t in corpus), 1),
                   "holds": sum(s.label == "hold" for t in corpus for s in t.silences)},  # fmt: skip
        "calls_per_point": calls,
        "points": out,
    }


def print_rows(rows: list[dict[str, Any]], title: str = "turn taking on human speech (asked first)") -> None:
    report.table(
        title,
        ["channel", "model ms", "transcript ms", "setting", "turns cut", "holds cut", "gap p50", "gap p95",
         "unanswered", "spec req/turn", "numbers+codes cut", "their gap p50"],
        [[r["channel"], r["model_delay_ms"], r.get("transcription_delay_ms", 0), r["flavour"], f"{r['turns_cut']}/{r['turns']}",
          f"{r['holds_cut']}/{r['holds']}", r["gap_ms_uncut"]["p50"], r["gap_ms_uncut"]["p95"], r["unanswered"],
          r["speculation"].get("requests_per_caller_turn"),
          f"{r['by_kind']['numbers and codes']['turns_cut']}/{r['by_kind']['numbers and codes']['turns']}",
          r["by_kind"]["numbers and codes"]["gap_ms_uncut"]["p50"]] for r in rows],
    )


def _name(
    material: str, words: bool = False, noise: bool = False, language: str = "en", patience: bool = False,
    slow_model: bool = False,
) -> str:  # fmt: skip
    name = "turn_taking" if material == "dictation" else f"turn_taking_{material}"
    return (name + ("_words" if words else "") + ("_noise" if noise else "") + ("_patience" if patience else "")
            + ("_slow_model" if slow_model else "") + ("" if language == "en" else f"_{language}"))


@report.plot_if_possible
def plot(result: dict[str, Any], *, quick: bool, name: str) -> None:
    plt = report.pyplot()
    points = result["points"]
    fig, a = plt.subplots(figsize=(8, 5))
    markers = {300: "o", 600: "s", 900: "^"}
    names = sorted({p["flavour"] for p in points})
    colours = {n: plt.cm.tab10(i) for i, n in enumerate(names)}
    for p in points:
        if p["gap_ms_uncut"]["p50"] is None:
            continue
        a.scatter(p["gap_ms_uncut"]["p50"], 100 * p["turn_cut_rate"], marker=markers.get(p["model_delay_ms"], "x"),
                  color=colours[p["flavour"]], facecolors="none" if p["channel"] == "clean" else None, s=60)
    for n in names:
        a.scatter([], [], color=colours[n], label=n)
    for d, m in markers.items():
        a.scatter([], [], marker=m, color="grey", label=f"model {d} ms")
    a.set_xlabel("caller-heard gap p50, end of speech -> first agent voice (ms, model delay included)")
    a.set_ylabel(f"% of {result['material']} turns with agent voice mid-turn")
    spoken = {"en": "", "es": ", Spanish", "fr": ", French"}[result.get("language", "en")]
    a.set_title(f"Turn taking on a recorded human voice{spoken} (filled: phone channel, hollow: clean)")
    a.set_ylim(0, 100)
    a.legend(fontsize=7, loc="upper right")
    a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(report.plot_path(name, quick=quick), dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="phone channel, 600 ms model delay, four settings")
    ap.add_argument("--material", choices=sorted(MATERIALS), default="dictation",
                    help="dictated numbers, codes and spellings (a human voice), or open sentences (Piper)")
    ap.add_argument("--words", action="store_true",
                    help="ours with and without the words before a pause read (UNFINISHED_HOLD_SECONDS), "
                    "at the usual and a twice slower transcriber, and with TURN_MODEL=v1-mini")
    ap.add_argument("--noise", action="store_true",
                    help="ours on a quiet phone line and with car noise, background voices or hiss under the "
                    "calls (and the noise gate off under the voices)")
    ap.add_argument("--language", choices=turn_corpus.LANGUAGES, default="en",
                    help="dictation in a Spanish or French human voice after the agent's question in it, to a "
                    "business that speaks English and that language (the open sentences are English)")
    ap.add_argument("--patience", action="store_true",
                    help="ours with and without CUT_OFF_PATIENCE_SECONDS (a caller answered mid-sentence gets "
                    "that pause from then on), twice each, interleaved")
    ap.add_argument("--slow-model", action="store_true",
                    help="ours with and without the words before a pause read, at a 900 ms model and an 800 ms "
                    "transcriber (with --material open)")
    args = ap.parse_args()
    if sum((args.words, args.noise, args.patience, args.slow_model)) > 1:
        ap.error("--words, --noise, --patience and --slow-model are different runs: choose one")
    if args.language != "en" and (args.material != "dictation" or args.words or args.noise or args.quick
                                  or args.patience or args.slow_model):
        ap.error("--language es|fr runs the dictation material with its own settings: no --material open, "
                 "--words, --noise or --quick")
    t0 = time.monotonic()
    result = asyncio.run(run(args.quick, material=args.material, words=args.words, noise=args.noise,
                             language=args.language, patience=args.patience, slow_model=args.slow_model))
    name = _name(args.material, args.words, args.noise, args.language, args.patience, args.slow_model)
    print("wrote", report.write(name, result, quick=args.quick))
    plot(result, quick=args.quick, name=name)
    print(f"\nturn_taking: done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
