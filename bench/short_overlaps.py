"""Short caller sounds over the first seconds of a reply: `python -m bench.short_overlaps [--quick]`.

A caller who pauses mid-sentence long enough to be answered and then finishes it in a word or two
("...fix my water heater" - the agent answers - "Tuesday") says as little as a caller who says "mhm"
to the answer, or "no". Past YIELD_WINDOW all three were backchannels: the reply went on and the
caller's words were dropped. BACKCHANNEL_AFTER_SECONDS makes a short sound in a reply's first 1.2 s a
turn, and the sound's words, once transcribed, tell the rest apart. Each call here: the caller's first
part, the agent's reply, then a short sound 0.6-1.8 s into it (the VAD hears it ~0.1 s later; each
kind spread evenly over the range): the end of the caller's sentence, a backchannel or a short
barge-in. For the default and for 0 (a backchannel at any time), it counts, before and after 1.1 s:

- sentence ends whose words reached the model (committed in the caller's turn before the next answer);
- backchannels that cut the reply (the agent stopped and the model answered the sound);
- short barge-ins ("no", "stop", "wait", "hold on") that stopped the reply and were answered.

Real sessions, Silero VAD, espeak-ng's en-gb caller on a clean line, the Realtime simulator at a 300 ms
model delay and a 500 ms transcriber, in real time, one call at a time. Writes bench/results/short_overlaps[-quick].json.

What it cannot show: when real callers finish a sentence over the agent, or backchannel, in its first
second; the offsets here are spread evenly to show the rule's edge, not drawn from calls. The simulator
transcribes each sound as said; a real transcriber can mishear a short word or make one of a cough.
"""

from __future__ import annotations

import random
from typing import Any

from agent.settings import load_settings
from bench import report
from bench.calls import quiet_logs
from simulator.runner import simulate
from simulator.scenario import Scenario
from simulator.server import RealtimeSimulator

GREETING = "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"
REPLY = "We can send a plumber tomorrow between eight and noon. The visit fee is eighty nine dollars."
ANSWER = "Got it, thank you."
# a sentence's first part, and a short end (each under BACKCHANNEL_SECONDS of speech)
SENTENCES = [
    ("Can someone come out to fix my water heater", "Tuesday"),
    ("I'd like to book a drain cleaning", "at noon"),
    ("Could you send someone to look at the leak", "today"),
    ("My water bill doubled and I think it's the toilet", "upstairs"),
    ("Do you have anyone free to install a dishwasher", "Friday"),
    ("I need a quote for a new water heater", "gas"),
]
BACKCHANNELS = ["mhm", "okay", "right", "yeah", "I see", "uh huh"]
STOPS = ["no", "stop", "wait", "hold on"]  # short barge-ins: each under BACKCHANNEL_SECONDS too
OFFSETS_MS = (600, 1800)
TRANSCRIPTION_MS = 500  # the Realtime API's transcriber, as bench.turn_sip assumes
EDGE_MS = 1100  # the default's 1.2 s, less the VAD's ~0.1 s to hear the sound begin
SETTINGS = {"default (1.2 s)": 1.2, "0 (a backchannel at any time)": 0.0}


def scenario(first: str, sound: str, offset_ms: int) -> Scenario:
    return Scenario.model_validate({
        "name": f"short overlap {sound!r} at {offset_ms} ms",
        "brain": "brains/plumbing.yaml",
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": GREETING}],
        "turns": [
            {"caller": first, "model": [{"say": REPLY}]},
            # answered only if the sound was a turn; a backchannel leaves this unasked for
            {"caller": sound, "barge_in_ms": offset_ms, "model": [{"say": ANSWER}]},
            {"pause_before_ms": 300, "hangup": True},
        ],
    })  # fmt: skip


async def one_call(sim: RealtimeSimulator, kind: str, first: str, sound: str, offset_ms: int, after: float) -> dict[str, Any]:
    settings = load_settings(openai_api_key="sim", backchannel_after_seconds=after)
    call = await simulate(scenario(first, sound, offset_ms), audio=True, sim=sim, settings=settings)
    # an interrupted reply is kept as far as it was heard
    replies = [t for t in call.transcript if t["role"] == "agent" and t["text"] and REPLY.startswith(t["text"])]
    said = " ".join(call.caller_said)
    return {
        "kind": kind,
        "sound": sound,
        "offset_ms": offset_ms,
        "reply_cut": bool(replies) and bool(replies[0]["interrupted"]),
        "heard_by_model": said.endswith(sound),
    }


async def run(quick: bool, *, seed: int = 21) -> dict[str, Any]:
    quiet_logs()
    # each kind's sounds spread evenly over the offsets, in a shuffled order
    rng = random.Random(seed)
    plan, offsets = [], []
    firsts = [f for f, _ in SENTENCES]
    for kind, items in (("sentence end", SENTENCES), ("backchannel", list(zip(firsts, BACKCHANNELS, strict=True))),
                        ("short barge-in", list(zip(firsts, STOPS, strict=False)))):  # fmt: skip
        spread = [OFFSETS_MS[0] + round(i * (OFFSETS_MS[1] - OFFSETS_MS[0]) / (len(items) - 1)) for i in range(len(items))]
        rng.shuffle(spread)
        plan += [(kind, first, sound) for first, sound in items]
        offsets += spread
    if quick:
        plan, offsets = plan[::3], offsets[::3]
    points = []
    async with RealtimeSimulator(model_delay_ms=300, transcription_delay_ms=TRANSCRIPTION_MS) as sim:
        for name, after in SETTINGS.items():
            calls = []
            for (kind, first, sound), offset in zip(plan, offsets, strict=True):
                calls.append(await one_call(sim, kind, first, sound, offset, after))
                print(f"  {name}: {calls[-1]}", flush=True)
            point: dict[str, Any] = {"setting": name, "backchannel_after_seconds": after}
            for early, span in ((True, "early"), (False, "late")):
                part = [c for c in calls if (c["offset_ms"] < EDGE_MS) == early]
                ends = [c for c in part if c["kind"] == "sentence end"]
                chans = [c for c in part if c["kind"] == "backchannel"]
                stops = [c for c in part if c["kind"] == "short barge-in"]
                point[span] = {"sentence_ends": len(ends), "sentence_ends_heard": sum(c["heard_by_model"] for c in ends),
                               "backchannels": len(chans),
                               "backchannels_cutting_the_reply": sum(c["reply_cut"] for c in chans),
                               "short_barge_ins": len(stops),
                               "short_barge_ins_answered": sum(c["reply_cut"] and c["heard_by_model"] for c in stops)}  # fmt: skip
            points.append({**point, "each": calls})
    report.table(
        f"short sounds {OFFSETS_MS[0]}-{OFFSETS_MS[1]} ms into the reply, before / after {EDGE_MS} ms (espeak en-gb caller, model 300 ms, transcriber 500 ms)",
        ["BACKCHANNEL_AFTER_SECONDS", "sentence ends the model heard", "backchannels that cut the reply",
         "short barge-ins that stopped it, answered"],
        [[p["setting"], " / ".join(f"{p[s]['sentence_ends_heard']} of {p[s]['sentence_ends']}" for s in ("early", "late")),
          " / ".join(f"{p[s]['backchannels_cutting_the_reply']} of {p[s]['backchannels']}" for s in ("early", "late")),
          " / ".join(f"{p[s]['short_barge_ins_answered']} of {p[s]['short_barge_ins']}" for s in ("early", "late"))]
         for p in points],
    )  # fmt: skip
    return {"model_delay_ms": 300, "transcription_delay_ms": TRANSCRIPTION_MS, "offsets_ms": list(OFFSETS_MS), "points": points}


def main() -> None:
    report.main("short_overlaps", __doc__, run, quick="every third call")


if __name__ == "__main__":
    main()
