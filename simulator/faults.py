"""Model failures the Realtime simulator can play, one per call (key): a scenario declares it under
`fault:`, a test passes it to `RealtimeSimulator.set_fault`.

Each is something the real OpenAI Realtime API does to a live call: a dropped socket, a rate limit or
server error, a session that expires, a slow first audio, a wrong API key; or, after the call, the
summary's Chat Completions request answered late or with an error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal[
    "drop", "error", "failed", "session_expired", "late_audio", "bad_key", "summary_late", "summary_error"
]


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind = Field(
        description="drop: the socket closes after the reply's first audio; error: an `error` event "
        "answers response.create; failed: the response starts, then ends `failed` in its response.done, "
        "its error as OpenAI sends it there (code server_error: type `server_error`, code null; code "
        "inference_rate_limit_exceeded: type `invalid_request_error`); session_expired: a session_expired error, then the socket closes; "
        "late_audio: the reply's first audio comes `delay_s` late; bad_key: HTTP 401 at every upgrade; "
        "summary_late: the call summary's chat completion answers `delay_s` late; summary_error: it "
        "answers HTTP 500 (`code`)"
    )
    at_response: int = Field(
        2,
        ge=1,
        description="the call's Nth response.create that fails (1 = the greeting), across reconnects",
    )
    times: int = Field(
        1,
        ge=1,
        description="error / failed / session_expired / late_audio: this many responses in a row fail",
    )
    code: Literal["rate_limit_exceeded", "inference_rate_limit_exceeded", "server_error"] = Field(
        "server_error", description="kinds error, failed, summary_error: the error's code"
    )
    delay_s: float = Field(
        3.0, ge=0, le=30, description="kinds late_audio, summary_late: how late the answer is"
    )
    stays_down: bool = Field(
        False,
        description="kind drop: every reconnect is then refused (HTTP 503): the model is gone",
    )

    def strikes(self, response: int) -> bool:
        """Whether the call's `response`th response.create is one that fails."""
        if self.kind == "drop":
            return response == self.at_response
        return self.at_response <= response < self.at_response + self.times
