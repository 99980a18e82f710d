"""The private parts of LiveKit Agents and its OpenAI and Silero plugins that the call leans on, in
one place. Each has no public equivalent (see the module that uses it); a LiveKit upgrade that
renames or reshapes one is caught by `missing()` in a test, before a caller meets it.

Used by: speculative replies and the late-reply hold line (subclasses of the plugin's
RealtimeSession: they override its event handlers and read its current generation), one VAD object
per call over a shared Silero model (its inference run on the call's loop), the worker's count of
calls it has accepted but not yet started (agent/worker.py), the console's view of the agent's own
turns, a caller on hold for a warm transfer (no "are you still there?"), and yield on resume (a reply
dropped from the agent's own copy of the conversation), backchannels (a caller's end of turn that is no turn at all), a
dictated number heard whole (the end-of-turn wait under way, shortened), a console that exits on
a second Ctrl-C, the transcript synchronizer's speaking-rate estimate (agent/speaking_rate.py), and
an audio end-of-turn model in LiveKit's streaming turn-detection path (agent/smart_turn.py: its base
detector and stream, whose transports are fed audio and resolve predictions by private methods).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import inspect
import signal
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from livekit.agents import Agent, AgentSession
from livekit.agents.inference.eot.base import TurnDetectorOptions
from livekit.agents.inference.eot.base import _BaseStreamingTurnDetector as StreamingTurnDetector
from livekit.agents.inference.eot.base import (
    _BaseStreamingTurnDetectorStream as StreamingTurnDetectorStream,
)
from livekit.agents.inference.eot.languages import ThresholdOptions
from livekit.agents.llm._realtime.openai import SAMPLE_RATE, _ResponseGeneration
from livekit.agents.vad import VADEvent
from livekit.agents.voice.transcription._speaking_rate import SpeakingRateEvent
from livekit.plugins.openai.realtime.realtime_model import RealtimeSession, _DiscardedGeneration

from agent.live.waiting_calls import takes_a_message

__all__ = [
    "SAMPLE_RATE",
    "SpeakingRateEvent",
    "StreamingTurnDetector",
    "StreamingTurnDetectorStream",
    "TurnDetectorOptions",
    "drain_turn_audio",
    "resolve_turn_prediction",
    "turn_thresholds",
    "DiscardedGeneration",
    "ResponseGeneration",
    "REALTIME_SESSION_HOOKS",
    "agents_console",
    "console_exit_without_deadlock",
    "use_speaking_rate_detector",
    "warm_api_tls_context",
    "current_generation",
    "drop_turns_when",
    "forget_chat_item",
    "generation_done",
    "missing",
    "new_generation",
    "own_vad",
    "CallSlotsLoad",
    "recheck_end_of_turn",
    "set_current_generation",
    "typed_turn_running",
    "user_away_paused",
]

ResponseGeneration = _ResponseGeneration  # one model response as the plugin assembles it
DiscardedGeneration = _DiscardedGeneration  # a response the plugin cancelled before the server named it

# the plugin's RealtimeSession methods our subclasses override (agent/speculation.py, agent/model_link.py)
REALTIME_SESSION_HOOKS = (
    "_handle_response_created",
    "_handle_response_done",
    "_handle_response_output_item_added",
    "_handle_response_audio_delta",
    "_handle_conversion_item_input_audio_transcription_delta",
    "_handle_conversion_item_input_audio_transcription_completed",
    "_emit_transcription_metrics",
    "_emit_error",
    "_convert_tools_to_oai",
)
# the fields of a ResponseGeneration we read or fill in
_GENERATION_FIELDS = ("message_ch", "function_ch", "messages", "_done_fut", "_created_timestamp")


def current_generation(session: RealtimeSession) -> Any:
    """The response the plugin is assembling now (a ResponseGeneration, a DiscardedGeneration or None)."""
    return session._current_generation


def set_current_generation(session: RealtimeSession, generation: Any) -> None:
    session._current_generation = generation


def generation_done(generation: Any) -> bool:
    return bool(generation._done_fut.done())


def new_generation(*, created_at: float) -> ResponseGeneration:
    """An empty generation, as the plugin starts one on response.created."""
    import asyncio

    from livekit.agents import utils

    return _ResponseGeneration(
        message_ch=utils.aio.Chan(),
        function_ch=utils.aio.Chan(),
        messages={},
        _done_fut=asyncio.get_running_loop().create_future(),
        _created_timestamp=created_at,
    )


def forget_chat_item(agent: Agent, item_id: str) -> None:
    """Remove one item from the agent's own copy of the conversation. `Agent.update_chat_ctx` would
    also diff the whole conversation against the model's and re-create every item whose text differs
    there (each caller turn, each reply cut by a barge-in)."""
    items = agent._chat_ctx.items
    items[:] = [item for item in items if item.id != item_id]


class CallSlotsLoad:
    """For an AgentServer whose load is its calls over its slots (agent/worker.py): `call_slots` for
    calls with the model, `overflow_slots` for callers a full fleet left ringing, who leave a message
    (agent/overflow.py). A call it has said yes to but not yet started counts as one call more.
    LiveKit's own count of those assumes, on a worker with no call yet, that each costs its whole load
    threshold over its warm processes: with 2 warm processes, two calls arriving at once filled the
    worker, and a third in the same instant was refused and, on a one-worker fleet, never dispatched
    (livekit-server: "no workers with sufficient capacity"; the caller heard ringing for 30 s, then SIP
    486 from livekit-sip). Between a call's process taking it and its request finishing it counts
    twice, for an instant, as it does in LiveKit's own count.

    LiveKit sees one load over both kinds of slot; `take_or_pass` (the session's request handler)
    says no to a call whose own kind is full, and LiveKit offers it to another worker."""

    call_slots: int | None = None
    overflow_slots: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._overflow_requests: set[str] = set()  # message requests not yet answered or started

    def _get_effective_load(self) -> float:
        if self.call_slots is None:
            return super()._get_effective_load()  # type: ignore[misc, no-any-return]
        calls = len(self.active_jobs) + self._reserved_slots  # type: ignore[attr-defined]
        return min(1.0, calls / (self.call_slots + self.overflow_slots))

    def _slots_in_use(self) -> tuple[int, int]:
        """(calls with the model, messages taken for a full fleet) this worker holds or has said yes to.
        A request still being answered is in `_reserved_slots` (a message's in `_overflow_requests`
        too), and may already be among the active jobs: a message counts once, a call, for that
        instant, twice (as in LiveKit's own count)."""
        active = self.active_jobs  # type: ignore[attr-defined]
        marked = {j.job.id for j in active if takes_a_message(j.job.metadata)}
        calls = len(active) - len(marked) + self._reserved_slots - len(self._overflow_requests)  # type: ignore[attr-defined]
        return calls, len(marked | self._overflow_requests)

    def _open(self) -> bool:
        return not self.draining and getattr(self, "_proc_pool", None) is not None  # type: ignore[attr-defined]

    def free_slots(self) -> int:
        """How many more calls this worker could take now: none while draining, or before LiveKit's
        run() has made its process pool (a task started beside it may ask first)."""
        if self.call_slots is None or not self._open():
            return 0
        return max(0, self.call_slots - self._slots_in_use()[0])

    def free_overflow_slots(self) -> int:
        """How many more callers of a full fleet this worker could take a message from now."""
        if self.call_slots is None or not self._open():
            return 0
        return max(0, self.overflow_slots - self._slots_in_use()[1])

    async def take_or_pass(self, request: Any) -> None:
        """LiveKit's job request: taken while a slot of its kind is free (this request is already
        among those held), else passed on to another worker."""
        if self.call_slots is None:
            await request.accept()
            return
        message = takes_a_message(request.job.metadata)
        if message:
            self._overflow_requests.add(request.id)  # counted as a message from here, not as a call
        try:
            calls, messages = self._slots_in_use()
            if (messages > self.overflow_slots) if message else (calls > self.call_slots):
                await request.reject(terminate=False)  # terminate would end the dispatch for good
            else:
                await request.accept()
        finally:
            self._overflow_requests.discard(request.id)


class _InferenceInline:
    """A call's event loop as Silero's stream sees it: `run_in_executor` runs the model there and then
    rather than on a thread of the loop's executor. A window's inference takes a fraction of a
    millisecond, while each trip to the executor and back woke a thread and then the loop (31 windows
    a second, 62 wake-ups): more CPU than the inference itself. The same model, the same windows in
    the same order: the same probabilities."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run_in_executor(self, _executor: Any, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        done = self._loop.create_future()
        try:
            done.set_result(fn(*args))
        except Exception as e:  # handed back as the executor would
            done.set_exception(e)
        return done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def own_vad(shared: Any, *, noise_gate_db: float = 0.0, min_silence: float | None = None) -> Any:
    """A new silero.VAD object over `shared`'s loaded ONNX model and options (the model is the
    costly part), whose streams run their inference on the call's loop (`_InferenceInline`), deaf to
    the line's background when `noise_gate_db` > 0 (agent/noise_gate.py), with its own `min_silence`
    when given; imported here, so a process that never listens does not load the plugin."""
    from livekit.plugins import silero
    from livekit.plugins.silero import onnx_model

    from agent.noise_gate import VOICE_OVER_STEADY_NOISE_P, LineBackground

    opts = copy.copy(shared._opts)
    if min_silence is not None:
        opts.min_silence_duration = min_silence

    class InlineStream(silero.VADStream):
        def __init__(self, vad: Any, opts: Any, model: Any) -> None:
            super().__init__(vad, opts, model)
            self._loop = _InferenceInline(self._loop)

    class VoiceOverSteadyNoise:
        """Silero's model for one stream, which also takes for speech a window in which the caller,
        going on after a pause, stood well above a steady noise (LineBackground.voice_over_steady_noise)."""

        def __init__(self, model: onnx_model.OnnxModel, background: LineBackground) -> None:
            self._model, self._background = model, background
            self._window_s = model.window_size_samples / model.sample_rate

        def __getattr__(self, name: str) -> Any:  # the model's window size and sample rate
            return getattr(self._model, name)

        def reset(self) -> None:  # Silero's loop reached a flush, and dropped what it had not read
            self._model.reset()
            self._background.forget_unread()

        def __call__(self, window: Any) -> float:
            p = self._model(window)
            if self._background.voice_over_steady_noise(self._window_s, p >= VOICE_OVER_STEADY_NOISE_P):
                return max(p, VOICE_OVER_STEADY_NOISE_P)
            return p

    class GatedStream(InlineStream):
        """Silero's stream, fed silence wherever the caller's line is at its background level."""

        def __init__(self, vad: Any, opts: Any, model: onnx_model.OnnxModel) -> None:
            self.background = LineBackground(noise_gate_db)
            super().__init__(vad, opts, VoiceOverSteadyNoise(model, self.background))

        def push_frame(self, frame: Any) -> None:
            super().push_frame(self.background.heard(frame))

        def flush(self) -> None:
            self.background.mark_flush()
            super().flush()

    class OwnVAD(silero.VAD):
        def stream(self) -> InlineStream:  # as silero.VAD.stream, with our stream
            model = onnx_model.OnnxModel(onnx_session=self._onnx_session, sample_rate=self._opts.sample_rate)
            gated = noise_gate_db > 0
            stream = GatedStream(self, self._opts, model) if gated else InlineStream(self, self._opts, model)
            self._streams.add(stream)
            return stream

    return OwnVAD(session=shared._onnx_session, opts=opts)


_TURN_DROPPERS: weakref.WeakKeyDictionary[AgentSession[Any], Callable[[], bool]] = weakref.WeakKeyDictionary()


def drop_turns_when(session: AgentSession[Any], drop: Callable[[], bool]) -> None:
    """Ask `drop()` at each end of a caller's turn in `session`; when it says so, LiveKit treats the
    turn as one it must not answer: no commit of the caller's audio, no interruption of the agent's
    reply, and a reply the caller's sound paused resumes (its false-interruption path). The session's
    AgentActivity (one per agent it runs) takes the decision with no public hook, so the hook is
    installed on the class once and looks the session up."""
    _TURN_DROPPERS[session] = drop

    def hooked(original: Callable[..., bool]) -> Callable[..., bool]:
        def on_end_of_turn(self: Any, info: Any) -> bool:
            drop = _TURN_DROPPERS.get(self._session)
            if drop is not None and not info.skip_reply and drop():
                info.skip_reply = True
            return bool(original(self, info))

        return on_end_of_turn

    _hook_activity("on_end_of_turn", hooked)


def _hook_activity(method: str, hooked: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Replace AgentActivity.`method` with `hooked(original)`, once per process: AgentActivity is
    made by the session, so a per-session hook has to live on the class and look its session up."""
    from livekit.agents.voice.agent_activity import AgentActivity

    if getattr(getattr(AgentActivity, method), "receptionist_hook", False):
        return
    replacement = hooked(getattr(AgentActivity, method))
    replacement.receptionist_hook = True  # type: ignore[attr-defined]
    setattr(AgentActivity, method, replacement)


_SPEECH_MEASURES: weakref.WeakKeyDictionary[AgentSession[Any], Callable[[float], None]] = weakref.WeakKeyDictionary()


def measure_caller_speech(session: AgentSession[Any], heard: Callable[[float], None]) -> None:
    """Call `heard(seconds)` as each stretch of the caller's speech in `session` ends, with the VAD's
    own measure of it: counted in audio windows, so an event loop held up while the caller spoke does
    not lengthen it (the times of the user_state_changed events would). Called before the session's
    user state turns to "listening"."""
    _SPEECH_MEASURES[session] = heard

    def hooked(original: Callable[..., None]) -> Callable[..., None]:
        def on_end_of_speech(self: Any, ev: Any) -> None:
            heard = _SPEECH_MEASURES.get(self._session)
            if heard is not None and ev is not None:  # None: an end of speech the VAD did not hear
                heard(float(ev.speech_duration))
            original(self, ev)

        return on_end_of_speech

    _hook_activity("on_end_of_speech", hooked)


def recheck_end_of_turn(session: AgentSession[Any]) -> bool:
    """Start the end-of-turn wait that is under way again, from the caller's last sound, with the
    session's endpointing delay as it is now: a shorter one ends the turn at once if that much silence
    has passed. LiveKit reads the delay once, as the caller stops; there is no public way to change the
    wait already running. False when no wait is running (the caller is speaking, or the turn is over)."""
    activity = session._activity
    recognition = getattr(activity, "_audio_recognition", None)
    if recognition is None or recognition._speaking:
        return False
    task = recognition._end_of_turn_task
    if task is None or task.done():
        return False
    recognition._run_eou_detection(recognition._hooks.retrieve_chat_ctx().copy(), trigger="vad")
    return True


def typed_turn_running(session: AgentSession[Any]) -> bool:
    """Whether LiveKit's text console is printing the replies to a turn typed in it right now."""
    run = getattr(session, "_global_run_state", None)
    return run is not None and not run.done()


@contextlib.contextmanager
def user_away_paused(session: AgentSession[Any]) -> Iterator[None]:
    """While inside, a quiet user never turns `away` (the session has no public switch for that)."""
    timeout = session._opts.user_away_timeout
    session._opts.user_away_timeout = None
    session._cancel_user_away_timer()
    try:
        yield
    finally:
        session._opts.user_away_timeout = timeout


def agents_console() -> Any | None:
    """LiveKit's console singleton, or None where this LiveKit version has another console."""
    try:
        from livekit.agents.cli._legacy import AgentsConsole
    except ImportError:
        return None
    return AgentsConsole.get_instance()


def warm_api_tls_context() -> None:
    """Build the TLS context LiveKit's HTTP session (its API client's) caches per process, from the CA
    bundle (~100 ms of CPU): in the forkserver, once, rather than in every call's process."""
    from livekit.agents.utils.http_context import _create_ssl_context

    _create_ssl_context()


def console_exit_without_deadlock() -> None:
    """Two ways LiveKit's console could hang on exit instead of returning to the shell. Call before
    `cli.run_app`.

    - It asks its worker thread to close under a plain Lock, and its Ctrl-C handler asks again on every
      later signal (a second Ctrl-C, or the SIGTERM the worker thread raises as it ends). A handler
      runs on the main thread, so one that lands while the first request holds the lock waited for
      itself forever. A reentrant lock lets it through; a second request is harmless.
    - Each request made the server's `aclose()` coroutine and queued it on the worker thread's loop,
      also after that loop had finished; the loop was never closed. At interpreter exit the garbage
      collector found it, and the never-awaited coroutine's warning went to stderr, still rich's proxy
      of its prompt, whose lock a frozen daemon thread held: the console hung for good (seen with
      CI's environment).
      Here a request only queues a callback (no coroutine exists until the loop runs it), and the
      worker thread closes its loop once the server has stopped."""
    from livekit.agents.cli import _legacy
    from livekit.agents.cli._legacy import _ConsoleWorker

    original = _ConsoleWorker.__init__
    if getattr(original, "reentrant", False):
        return
    worker_thread = _ConsoleWorker._worker_thread

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._lock = threading.RLock()

    def shutdown(self: Any) -> None:
        with self._lock, contextlib.suppress(RuntimeError):  # its loop is closed: the server stopped
            self._loop.call_soon_threadsafe(_close_console_server, self._server)

    def _worker_thread(self: Any) -> None:
        try:
            worker_thread(self)
        finally:
            with self._lock:
                self._loop.close()

    __init__.reentrant = True  # type: ignore[attr-defined]
    _ConsoleWorker.__init__ = __init__  # type: ignore[method-assign]
    _ConsoleWorker.shutdown = shutdown  # type: ignore[method-assign]
    _ConsoleWorker._worker_thread = _worker_thread  # type: ignore[method-assign]
    _legacy.readkey = _exit_before_reading(_legacy.readkey, _legacy)


def _exit_before_reading(read: Callable[[], str], legacy: Any) -> Callable[[], str]:
    """The console's key reader, which first leaves if a Ctrl-C (or SIGTERM) came and the console is
    still reading. LiveKit's handler exits by raising in the main thread wherever it stands; when that
    is inside a finalizer (`__del__`, a weakref callback), Python prints the exception and goes on,
    and the handler, having seen its signal once, only asks the worker to close on the next ones:
    the prompt was back and the console never exited."""
    asked = threading.Event()

    def watch(sig: int) -> None:
        handler = signal.getsignal(sig)
        if not callable(handler) or getattr(handler, "watched", False):
            return

        def watched(signum: int, frame: Any) -> None:
            asked.set()
            handler(signum, frame)

        watched.watched = True  # type: ignore[attr-defined]
        signal.signal(sig, watched)

    def readkey() -> str:
        for sig in legacy.HANDLED_SIGNALS:  # the console's handlers are in place once it reads keys
            watch(sig)
        if asked.is_set():
            raise legacy._ExitCli()
        return read()

    return readkey


_console_closes: set[asyncio.Task[Any]] = set()


def _close_console_server(server: Any) -> None:
    """On the console worker's loop: the server's close (idempotent), as LiveKit asked for it."""
    task = asyncio.ensure_future(server.aclose())
    _console_closes.add(task)  # the loop holds its tasks weakly
    task.add_done_callback(_console_closes.discard)


def use_speaking_rate_detector(detector: type) -> None:
    """The transcript synchronizer builds its SpeakingRateDetector by this module-level name on each
    session: `detector` is built instead (agent/speaking_rate.py: the same events for a fifth of the CPU)."""
    from livekit.agents.voice.transcription import synchronizer

    synchronizer.SpeakingRateDetector = detector  # type: ignore[misc]


def turn_thresholds(model: str, threshold: float) -> ThresholdOptions:
    """One end-of-turn threshold for every language, for a detector LiveKit has no defaults for."""
    return ThresholdOptions(model, overrides=threshold)  # type: ignore[arg-type]


def resolve_turn_prediction(stream: Any, request_id: str, probability: float, *, inference_duration: float) -> None:
    """A transport's answer to the stream's request (a stale request id is ignored by the stream)."""
    stream._resolve_prediction(request_id, probability, inference_duration=inference_duration)


async def drain_turn_audio(stream: Any) -> None:
    """A transport's run(): the stream's audio and turn boundaries, into push_frame() and flush()."""
    await stream._drain_audio_channel()


def missing() -> list[str]:
    """What of the above this LiveKit no longer has, by name; [] when everything is where we expect."""
    gone = [
        f"RealtimeSession.{name}"
        for name in REALTIME_SESSION_HOOKS
        if not callable(getattr(RealtimeSession, name, None))
    ]
    if "_current_generation" not in inspect.getsource(RealtimeSession.__init__):
        gone.append("RealtimeSession._current_generation")
    from livekit.plugins import silero

    fields = {f.name for f in dataclasses.fields(_ResponseGeneration)}
    gone += [f"_ResponseGeneration.{name}" for name in _GENERATION_FIELDS if name not in fields]
    init = inspect.signature(silero.VAD.__init__).parameters
    gone += [f"silero.VAD.__init__({name}=)" for name in ("session", "opts") if name not in init]
    source = inspect.getsource(silero.VAD.__init__)
    gone += [f"silero.VAD.{name}" for name in ("_onnx_session", "_opts", "_streams") if f"self.{name}" not in source]
    stream_init = list(inspect.signature(silero.VADStream.__init__).parameters)
    if stream_init[1:4] != ["vad", "opts", "model"]:
        gone.append("silero.VADStream.__init__(vad, opts, model)")
    if "self._loop = asyncio.get_event_loop()" not in inspect.getsource(silero.VADStream.__init__):
        gone.append("silero.VADStream._loop")
    if "await self._loop.run_in_executor(None, self._model," not in inspect.getsource(silero.VADStream._main_task):
        gone.append("silero.VADStream._main_task: its model run by self._loop.run_in_executor")
    from livekit.agents import AgentServer

    if not callable(getattr(AgentServer, "_get_effective_load", None)):
        gone.append("AgentServer._get_effective_load")
    gone += [f"AgentServer.{m}: self._get_effective_load()" for m in ("_is_available", "_update_worker_status")
             if "self._get_effective_load()" not in inspect.getsource(getattr(AgentServer, m))]  # fmt: skip
    if "self._reserved_slots += 1" not in inspect.getsource(AgentServer._answer_availability):
        gone.append("AgentServer._reserved_slots")
    if "_opts.user_away_timeout" not in inspect.getsource(AgentSession._set_user_away_timer):
        gone.append("AgentSession._opts.user_away_timeout")
    if not callable(getattr(AgentSession, "_cancel_user_away_timer", None)):
        gone.append("AgentSession._cancel_user_away_timer")
    if "self._chat_ctx" not in inspect.getsource(Agent.__init__):
        gone.append("Agent._chat_ctx")
    from livekit.agents.voice.agent_activity import AgentActivity
    from livekit.agents.voice.audio_recognition import _EndOfTurnInfo

    if "info.skip_reply" not in inspect.getsource(AgentActivity._user_turn_completed_impl):
        gone.append("AgentActivity: _EndOfTurnInfo.skip_reply honoured")
    if "skip_reply" not in {f.name for f in dataclasses.fields(_EndOfTurnInfo)}:
        gone.append("_EndOfTurnInfo.skip_reply")
    if "self._session" not in inspect.getsource(AgentActivity.__init__):
        gone.append("AgentActivity._session")
    if list(inspect.signature(AgentActivity.on_end_of_speech).parameters) != ["self", "ev"]:
        gone.append("AgentActivity.on_end_of_speech(self, ev)")
    if "speech_duration" not in {f.name for f in dataclasses.fields(VADEvent)}:
        gone.append("VADEvent.speech_duration")
    from livekit.agents.voice.audio_recognition import AudioRecognition

    eou = inspect.getsource(AudioRecognition._run_eou_detection)
    if "self._end_of_turn_task" not in eou or "self._endpointing.min_delay" not in eou:
        gone.append("AudioRecognition._run_eou_detection: _end_of_turn_task, _endpointing.min_delay")
    if "self._speaking" not in inspect.getsource(AudioRecognition._on_vad_event):
        gone.append("AudioRecognition._speaking")
    if "self._audio_recognition" not in inspect.getsource(AgentActivity.__init__):
        gone.append("AgentActivity._audio_recognition")
    if "_global_run_state" not in inspect.getsource(AgentSession):
        gone.append("AgentSession._global_run_state")
    try:
        from livekit.agents.cli._legacy import AgentsConsole
    except ImportError:
        gone.append("livekit.agents.cli._legacy.AgentsConsole")
    else:
        gone += [f"AgentsConsole.{n}" for n in ("get_instance",) if not hasattr(AgentsConsole, n)]
    from livekit.agents.utils import http_context

    if not callable(getattr(http_context, "_create_ssl_context", None)):
        gone.append("livekit.agents.utils.http_context._create_ssl_context")
    try:
        from livekit.agents.cli._legacy import _ConsoleWorker
    except ImportError:
        gone.append("livekit.agents.cli._legacy._ConsoleWorker")
    else:
        from livekit.agents.cli import _legacy

        gone += [f"livekit.agents.cli._legacy.{n}" for n in ("readkey", "HANDLED_SIGNALS", "_ExitCli")
                 if not hasattr(_legacy, n)]  # fmt: skip
        if "ch = readkey()" not in inspect.getsource(_legacy.prompt):
            gone.append("livekit.agents.cli._legacy.prompt: ch = readkey()")
        source = inspect.getsource(_ConsoleWorker)  # the file's, whether or not patched here
        gone += [f"_ConsoleWorker: {text}" for text in (
            "with self._lock", "self._loop = asyncio.new_event_loop()", "self._server", "def _worker_thread(self)"
        ) if text not in source]  # fmt: skip
    from livekit.agents.voice.transcription import _speaking_rate, synchronizer

    if "speaking_rate_detector=SpeakingRateDetector()" not in inspect.getsource(synchronizer.TranscriptSynchronizer):
        gone.append("TranscriptSynchronizer: speaking_rate_detector=SpeakingRateDetector()")
    if "self._spectral_flux(audio, sample_rate)" not in inspect.getsource(_speaking_rate.SpeakingRateStream):
        gone.append("SpeakingRateStream: the spectral flux we compute as it does")
    gone += [f"StreamingTurnDetectorStream.{n}" for n in ("_resolve_prediction", "_drain_audio_channel")
             if not callable(getattr(StreamingTurnDetectorStream, n, None))]  # fmt: skip
    if "self._transport.push_frame(item)" not in inspect.getsource(StreamingTurnDetectorStream._drain_audio_channel):
        gone.append("StreamingTurnDetectorStream._drain_audio_channel: transport.push_frame")
    return gone
