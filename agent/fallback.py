"""What the caller hears when the model fails, and the call's path when it cannot be reached at all.

A failing model (a dropped socket, a rate limit, an expired session) gets the brain's hold line at once
and, once the plugin has reconnected with the conversation replayed, the lost reply asked for again.
When the plugin's reconnects are spent, the call goes on without the model: the brain's apology, then
a transfer to the business's people when they are available, otherwise a voicemail (the caller's words
recorded to a WAV file under VOICEMAIL_DIR, and a `messages` row pointing at it: agent/voicemail.py),
then a hang-up.

Every line it plays is rendered to audio at worker start (agent/fallback_audio.py): nothing on this
path needs the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession, APIConnectionError, APIError, llm
from livekit.agents.voice.events import ErrorEvent

from agent.brain import departments
from agent.call import CallContext, TransferFailed
from agent.fallback_audio import FallbackAudio
from agent.model_link import ModelLink
from agent.voicemail import Voicemail

log = logging.getLogger("receptionist.fallback")

# errors after which the caller's reply will not come on its own, by their code or, failing that,
# their type: OpenAI ends a reply its server failed with the type `server_error` and no code, and
# a rate limit that strikes a started reply with the code `inference_rate_limit_exceeded`
_LOST_REPLY_CODES = ("rate_limit_exceeded", "inference_rate_limit_exceeded", "server_error", "session_expired")


def error_name(cause: object) -> str | None:
    """A Realtime error's name: its code, or its type where it has no code (LiveKit's plugin puts the
    event's error object in an APIError's `body`)."""
    body = getattr(cause, "body", None)
    code, type_ = getattr(body, "code", None), getattr(body, "type", None)
    if isinstance(code, str) and code:
        return code
    return type_ if isinstance(type_, str) and type_ else None


class ModelFailover(Voicemail):
    """Keeps the caller from dead air while the model fails, and runs the model-free path once it is
    unreachable (see the module's docstring)."""

    def __init__(
        self,
        session: AgentSession[CallContext],
        call: CallContext,
        link: ModelLink,
        audio: FallbackAudio | None,
        *,
        voicemail_dir: Path,
        hold_after: float,
        max_reply_retries: int,
        retry_interval: float,
    ) -> None:
        super().__init__(
            session, call, audio, voicemail_dir=voicemail_dir, taken_while="the AI assistant was unreachable"
        )
        self.link = link
        link.hold_after = hold_after
        self.max_reply_retries = max_reply_retries
        self.retry_interval = retry_interval
        self.reply_lost = False  # a reply the caller is waiting for will not come on its own
        self.reply_retries = 0
        self.holding = False
        self.held = False  # the hold line has played since the model last spoke or reconnected
        self._tasks: set[asyncio.Task[Any]] = set()
        if audio is not None:
            link.hold_pcm = audio.pcm["hold"]
        link.on_lost(self._on_lost)
        link.on_reconnected(self._on_reconnected)
        session.on("error", self._on_error)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- while the model fails -------------------------------------------------------------------
    def _on_error(self, ev: ErrorEvent) -> None:
        err = ev.error
        if not isinstance(err, llm.RealtimeModelError) or self.link.lost:
            return
        cause = err.error
        code = error_name(cause)
        dropped = isinstance(cause, APIConnectionError)
        if not dropped and not (isinstance(cause, APIError) and code in _LOST_REPLY_CODES):
            return  # a refused request of ours (a stale truncate, say): nothing the caller waits for
        log.warning("model failure mid-call (%s): %s", code or "connection", cause)
        self.call.extras.setdefault("model_failures", []).append(code or "connection_lost")
        self.reply_lost = True
        self._spawn(self._hold())
        if not dropped and code != "session_expired":
            # the socket is fine and nothing will come: ask again, a bounded number of times
            self._spawn(self._ask_again_later(cause))

    async def _hold(self) -> None:
        """The hold line, at once, instead of the silence of a reply that is not coming."""
        if self.holding or self.held or self.audio is None or self.link.lost:
            return  # once per outage: a string of failed reconnects is not a string of hold lines
        self.holding = self.held = True
        try:
            speech = self.session.current_speech
            if speech is not None and not speech.done():
                # the reply in progress is dead (its socket is gone or it was refused)
                with contextlib.suppress(RuntimeError):
                    self.session.interrupt(force=True)
            await self.play("hold")
        finally:
            self.holding = False

    async def _ask_again_later(self, cause: Exception) -> None:
        self.reply_retries += 1
        if self.reply_retries > self.max_reply_retries:
            self.link.report_lost(cause)
            return
        await asyncio.sleep(self.retry_interval * self.reply_retries)
        self._ask_again()

    def _on_reconnected(self) -> None:
        self.held = False
        if self.reply_lost:
            self._ask_again()

    def _ask_again(self) -> None:
        if self.link.lost or not self.reply_lost:
            return
        self.reply_lost = False
        with contextlib.suppress(RuntimeError):
            self.session.generate_reply(
                instructions=(
                    "Your connection dropped while the caller was waiting for your answer. Answer "
                    "their last request now, briefly, without mentioning any technical problem."
                )
            )

    def reply_arrived(self) -> None:
        """The model spoke again: the failures so far are behind us."""
        self.reply_retries = 0
        self.held = False

    # -- without the model ------------------------------------------------------------------------
    def _on_lost(self, error: Exception) -> None:
        self.call.extras["model_unreachable"] = str(error)[:300]
        self.call.end_reason = "model_unreachable"
        if self.call.outcome in (None, "answered", "abandoned"):
            # nothing done yet; a transfer or a voicemail below raises it
            self.call.outcome = "error"
        if self.tap is not None:
            self.tap.muted = True  # the caller's audio no longer goes to a model that is not there
        self._spawn(self._run_without_model())

    async def _run_without_model(self) -> None:
        call, brain = self.call, self.call.brain
        line = call.line
        speech = self.session.current_speech
        if speech is not None and not speech.done():
            with contextlib.suppress(RuntimeError):
                self.session.interrupt(force=True)
        # the department a caller asking for a person would reach, if one is open now
        open_now = departments.route(brain, "explicit_request", call.now()).department
        destination = open_now.transfer_to if open_now is not None else None
        if line is not None and destination:
            await self.play("transfer")
            if self.call_ended:
                return
            try:
                await line.transfer(destination)
                call.set_outcome("escalated")
                return
            except TransferFailed as e:
                log.warning("model down and the transfer to %s failed: %s", destination, e)
                call.extras["transfer_failed"] = str(e)
        if self.audio is not None and self.tap is not None and not self.call_ended:
            await self.take_message("message")
        if line is not None and not self.call_ended:
            await line.hang_up("model_unreachable")
