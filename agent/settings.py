"""Every setting the receptionist reads, in one place: environment variables (or a .env file).

A missing required setting stops start-up with one line naming the variable; secrets are SecretStr,
so they never print in logs or reprs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(SystemExit):
    """Raised (as a clean exit) when the environment cannot start the receptionist."""


@dataclass(frozen=True)
class PriceTable:
    """The prices one call is costed at: model tokens in USD per 1M, telephony in USD per minute."""

    model: str
    text_input: float
    text_cached_input: float
    text_output: float
    audio_input: float
    audio_cached_input: float
    audio_output: float
    as_of: str
    telephony_per_minute: float


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # LiveKit: where the worker registers and where SIP calls arrive as rooms
    livekit_url: str = Field("ws://127.0.0.1:7880", description="LiveKit server URL (ws:// or wss://)")
    livekit_api_key: str | None = Field(None, description="LiveKit API key (required for dev/start)")
    livekit_api_secret: SecretStr | None = Field(None, description="LiveKit API secret (required for dev/start)")
    agent_name: str = Field(
        "receptionist", description="Name the worker registers under; SIP dispatch rules target it"
    )

    # OpenAI Realtime (speech to speech)
    openai_api_key: SecretStr = Field(description="OpenAI API key (any value against the simulator)")
    openai_base_url: str | None = Field(
        None, description="Override the OpenAI endpoint, e.g. the local Realtime simulator"
    )
    openai_realtime_model: str = Field("gpt-realtime", description="Realtime model name")
    openai_voice: str = Field("marin", description="Realtime voice")
    # a dropped model connection is retried by the plugin (0.1 s, then every interval), which replays
    # the conversation; once these are spent the call goes on without the model (agent/fallback.py)
    model_max_retries: int = Field(3, ge=0, le=10, description="Reconnects to the model before giving up")
    model_retry_interval: float = Field(
        1.0, ge=0.1, le=10, description="Seconds between reconnects after the first (which is at once)"
    )
    model_connect_timeout: float = Field(5.0, ge=1, le=30, description="Seconds one model connect may take")
    hold_after: float = Field(
        0.7, ge=0.2, le=1.5,
        description="Seconds a reply's first audio may be late before the caller hears the hold line",
    )  # fmt: skip

    # The call report's optional prose summary (agent/call_summary.py): a text model at OPENAI_BASE_URL
    # writes a few sentences for the owner from the transcript, after the caller has hung up
    call_summary_model: str = Field(
        "", description="Chat Completions model that writes each call's prose summary (empty = off)"
    )
    call_summary_timeout: float = Field(
        10.0, gt=0, le=60, description="Seconds the summary may take before the report is left without it"
    )

    # What a call costs (the call report's `cost`). Defaults: OpenAI's published prices for
    # gpt-realtime in USD per 1M tokens, read 2026-11-28 from developers.openai.com/api/docs/models
    # (gpt-realtime); set them for another model or a negotiated rate
    price_text_input: float = Field(4.00, ge=0, description="USD per 1M text input tokens")
    price_text_cached_input: float = Field(0.40, ge=0, description="USD per 1M cached text input tokens")
    price_text_output: float = Field(16.00, ge=0, description="USD per 1M text output tokens")
    price_audio_input: float = Field(32.00, ge=0, description="USD per 1M audio input tokens")
    price_audio_cached_input: float = Field(0.40, ge=0, description="USD per 1M cached audio input tokens")
    price_audio_output: float = Field(64.00, ge=0, description="USD per 1M audio output tokens")
    prices_as_of: str = Field("2026-11-28", description="When the PRICE_* figures were taken (shown in reports)")
    # Telephony, per started minute of each call (Twilio and LiveKit Cloud both round a call up to
    # the minute). Twilio: US local inbound (origination) on Elastic SIP Trunking as listed on
    # twilio.com/sip-trunking/pricing/us (not re-checked 2026-11-28: set your account's rate).
    # LiveKit: 0, livekit-sip is self-hosted here; on LiveKit Cloud set your plan's SIP minute rate
    twilio_trunk_per_minute: float = Field(
        0.0034, ge=0, description="USD per minute for the Twilio Elastic SIP trunk leg"
    )
    livekit_sip_per_minute: float = Field(
        0.0, ge=0, description="USD per minute for LiveKit SIP (0 when self-hosted; your plan's rate on LiveKit Cloud)"
    )

    # Warm transfers (brain `escalation`: a department's `transfer: warm`): the agent calls the person
    # through this LiveKit SIP outbound trunk (made by `receptionist provision` from SIP_OUTBOUND_ADDRESS)
    sip_outbound_trunk_name: str = Field(
        "receptionist-outbound", description="LiveKit SIP outbound trunk a warm transfer dials the person through"
    )
    warm_transfer_ring_seconds: float = Field(
        20.0, gt=0, le=120,
        description="Seconds a warm transfer lets the person's phone ring before it transfers cold instead",
    )  # fmt: skip

    # The business: one brain file, or a directory of them (the dialed number picks the brain)
    brain_path: Path = Field(
        Path("brains"),
        validation_alias=AliasChoices("brain_path", "brains"),
        description="Brain YAML file or directory of brain files",
    )

    # Stores
    database_url: str | None = Field(
        None, description="Postgres DSN; calls, transcripts, appointments and leads live here"
    )
    # a job process holds one call and opens its pool at that call (a warm idle one holds none), so
    # the workers hold replicas x WORKER_MAX_CALLS x this many connections at most (README, Operations)
    database_pool_size: int = Field(
        2, ge=1, le=20, description="Postgres connections per job process: bookings and the call's records share them"
    )
    database_pgbouncer: bool = Field(
        False,
        description="DATABASE_URL is PgBouncer in transaction pooling mode: no prepared statements, "
        "timeouts from PgBouncer's connect_query (workers only; commands need a session)",
    )
    redis_url: str | None = Field(None, description="Redis URL for live call state (optional)")
    journal_spill_dir: Path = Field(
        Path("var/spill"), description="Where call records wait on disk while Postgres is down"
    )
    fallback_audio_dir: Path = Field(
        Path("var/fallback-audio"),
        description="Where each brain's model-free lines (apology, hold line) are rendered at worker start",
    )
    greeting_audio: bool = Field(
        True,
        description="Play each brain's greeting from the model's own audio of it, kept from the first call "
        "that greeted whole and word for word, so callers hear it without the model's latency (false: the "
        "model says every greeting)",
    )
    greeting_audio_dir: Path = Field(
        Path("var/greetings"),
        description="Where the kept greetings and voiced lines are (a WAV per line, model and voice)",
    )
    voiced_lines: bool = Field(
        True,
        description="With GREETING_AUDIO: at worker start, have the model read each brain's greeting and "
        "model-down lines once (per fleet, model and voice), so the fleet's first caller hears the kept "
        "greeting and the hold line and apology are in the model's voice, not espeak-ng's",
    )
    voicemail_dir: Path = Field(
        Path("var/voicemail"), description="Where callers' recorded messages are kept when the model is down"
    )
    recordings_dir: Path = Field(
        Path("var/recordings"),
        description="Where calls are recorded (<call id>.ogg, caller left, agent right) for brains with recording on",
    )
    audio_bucket: str | None = Field(
        None,
        description="s3://bucket/prefix: recordings and voicemails move there from the worker's disk once "
        "their rows are written (agent/store/audio.py); none: they stay on the worker's disk",
    )
    s3_endpoint_url: str | None = Field(
        None, description="An S3-compatible service's URL (MinIO, R2, B2, ...); none: AWS S3"
    )
    s3_region: str | None = Field(None, description="The bucket's region (none: the service's default)")
    s3_access_key_id: str | None = Field(None, description="S3 access key (none: boto3's own chain)")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret key")
    caller_rate_limit: int = Field(
        20, ge=0, description="Calls allowed per caller number per hour (0 = unlimited)"
    )

    # Turn taking (local Silero VAD); the defaults are the measured winners, see README Performance
    # measured (bench/endpointing, bench/response_gap): with speculative replies on, 0.45 s endpointing
    # and 0.15 s VAD silence answer in ~225 ms p50 (model delay excluded) and cut off no more paused
    # callers than 0.5 s / 0.55 s without them (13/24 on the paused corpus, question asked first)
    min_endpointing_delay: float = Field(0.45, ge=0.0, le=5.0, description="Silence (s) that ends a caller turn")
    max_endpointing_delay: float = Field(3.0, ge=0.0, le=10.0, description="Longest wait (s) for end of turn")
    # measured (bench/barge_in): 0.2 s stops the agent in 245 ms p50 instead of 532 ms at 0.5 s, with
    # no more false interruptions on noise (false-interruption resume is on)
    dictation_endpointing_delay: float = Field(
        1.2, ge=0.0, le=5.0,
        description="Silence (s) that ends a caller turn while they dictate a number, address or spelling",
    )
    dictation_hold_seconds: float = Field(
        3.0, ge=0.0, le=5.0,
        description="Longest silence (s) inside a phone number, confirmation code or email address the caller is "
        "dictating, while their words transcribed so far are not a whole one (0 = off: DICTATION_ENDPOINTING_DELAY decides)",
    )
    unfinished_hold_seconds: float = Field(
        2.5, ge=0.0, le=5.0,
        description="Longest silence (s) after a caller's words that stop where a sentence cannot end (\"um\", "
        "\"and\", \"the\", \"a quote for\"): the pause waits up to 0.4 s past MIN_ENDPOINTING_DELAY for its transcript, "
        "and in any case until the reply asked for at the pause could be heard, and while that ends unfinished the turn "
        "does not end (0 = off)",
    )
    cut_off_patience_seconds: float = Field(
        1.2, ge=0.0, le=3.0,
        description="Once the agent has answered a caller mid-sentence (they spoke again within "
        "BACKCHANNEL_AFTER_SECONDS of its reply's first audio), the caller's turns end after the pause they made "
        "then plus 0.2 s, for the rest of the call, when that is at most this (s); a dictated value keeps its own "
        "pacing (0 = off: MIN_ENDPOINTING_DELAY throughout)",
    )
    min_interruption_duration: float = Field(
        0.2, ge=0.0, le=5.0, description="Caller speech (s) needed to interrupt the agent"
    )
    backchannel_seconds: float = Field(
        0.8, ge=0.0, le=3.0,
        description="Caller speech shorter than this (s, as the VAD measures it) over the agent's reply (\"mhm\", "
        "\"okay\") is a backchannel: the reply resumes where it paused and nothing is answered (0 = off: every sound is a turn)",
    )
    backchannel_after_seconds: float = Field(
        1.2, ge=0.0, le=5.0,
        description="A short sound over the agent's reply to the caller's turn is a backchannel only this long (s) "
        "after the reply became audible; before, it is the caller's sentence going on (\"...water heater\" - the agent "
        "answers - \"Tuesday\"): the agent stops and the model hears it (0 = a backchannel at any time)",
    )
    noise_gate_db: float = Field(
        15.0, ge=0.0, le=40.0,
        description="The VAD hears only caller sound this many dB above the line's background (the 25th "
        "percentile of its levels over 3 s), so background voices neither pause the agent nor hold the caller's turn open (0 = off)",
    )
    yield_window: float = Field(
        0.5, ge=0.0, le=3.0,
        description="A caller who speaks again this soon (s) after the agent's reply starts stops it at once; "
        "the reply is dropped and their whole turn answered (0 = off: the usual barge-in)",
    )
    vad_min_silence_duration: float = Field(
        0.15, ge=0.05, le=3.0,
        description="Silero VAD min silence (s): when a pause is reported, and a speculative reply requested",
    )
    turn_model: Literal["none", "v1-mini", "smart-turn"] = Field(
        "none",
        description="An audio end-of-turn model for the caller's open sentences: 'v1-mini' (LiveKit's local "
        "model) or 'smart-turn' (Smart Turn v3.2). When it hears the sentence unfinished, the turn waits up to "
        "MAX_ENDPOINTING_DELAY instead of MIN_ENDPOINTING_DELAY. A phone number, code, email or spelled name being "
        "dictated keeps its transcript-judged pacing. Raises the VAD silence to 0.25 s (LiveKit asks the model only then)",
    )
    turn_model_threshold: float | None = Field(
        None, gt=0.0, lt=1.0,
        description="The turn model's probability below which a sentence is unfinished (unset: the model's own, "
        "0.36 for v1-mini in English, 0.5 for Smart Turn)",
    )
    speculative_reply: bool = Field(
        True,
        description="Request the model's reply while the end of the caller's turn is still being confirmed "
        "(played only once it is; cancelled if the caller goes on)",
    )
    speculation_lead: float = Field(
        0.3, ge=0.0, le=3.0,
        description="How long (s) before the end-of-turn decision the speculative reply is requested",
    )

    # Capacity of one worker: LiveKit stops sending it calls once it is full
    worker_max_calls: int = Field(
        default_factory=lambda: default_max_calls(),
        ge=1,
        le=500,
        description="Concurrent calls one worker takes; by default CALLS_PER_CORE for each core this "
        "process may use (its CPU affinity and cgroup quota). Size it with bench/fleet",
    )
    worker_idle_processes: int = Field(
        2, ge=0, le=64, description="Warm job processes kept ready (Silero loaded) for the next calls"
    )
    # callers a full fleet leaves ringing (agent/overflow.py): a message taken before they hear busy
    worker_overflow_calls: int = Field(
        default_factory=lambda: default_overflow_calls(),
        ge=0,
        le=100,
        description="Callers past WORKER_MAX_CALLS this worker answers without the model once they have rung "
        "OVERFLOW_AFTER_SECONDS with every worker full: the brain's busy line, then a voicemail. By default "
        "one for each core this process may use; 0 = none (they ring out and hear busy)",
    )
    overflow_after_seconds: float = Field(
        20.0, ge=3.0, le=120.0,
        description="How long a caller rings with every worker full before a voicemail takes the call: a "
        "few seconds under the trunk's ringing timeout (SIP_RINGING_TIMEOUT_SECONDS, 30)",
    )
    worker_job_executor: Literal["process", "thread"] = Field(
        "process",
        description="Where a call runs: its own job process (forked from a preloaded forkserver), or a "
        "thread of the worker's process (no process start, one Python interpreter for every call)",
    )
    # LiveKit's own default, 8081, is livekit-sip's health port: a worker beside the SIP bridge
    # (the local stack, one host or pod) could not start
    worker_port: int = Field(
        8089, ge=0, le=65535,
        description="Port of the worker's health check (GET /) and status (GET /worker) in start mode; "
        "0 = any free port (dev always picks a free one)",
    )

    # Operator metrics (README "Operator metrics"): LiveKit's own and the receptionist's, one endpoint
    metrics_port: int | None = Field(
        None, ge=1, le=65535,
        description="Serve Prometheus metrics at http://<host>:PORT/metrics from the worker (dev/start); "
        "unset = off",
    )  # fmt: skip

    # The health endpoint (README "Operations"): ok / degraded (Postgres or Redis down) / down (model)
    health_port: int | None = Field(
        None, ge=1, le=65535,
        description="Serve GET /health (JSON; 200 ok or degraded, 503 down) from a dev/start worker; unset = off",
    )  # fmt: skip
    health_model_probe_s: float = Field(
        60.0, ge=0, le=3600,
        description="Seconds a health probe of the Realtime model is reused before the next request probes again",
    )  # fmt: skip

    # Notifications (README "Notifications"): who to tell is in each brain's `notify:`; how to reach
    # the channels, and every secret, is here
    smtp_host: str | None = Field(None, description="SMTP server for email notifications")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 TLS, 25 plain)")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="How the SMTP connection is secured"
    )
    smtp_username: str | None = Field(None, description="SMTP login (none: no AUTH)")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    notify_email_from: str = Field(
        "receptionist@localhost", description="From address of email notifications"
    )
    twilio_account_sid: str | None = Field(None, description="Twilio account for SMS notifications")
    twilio_auth_token: SecretStr | None = Field(None, description="Twilio auth token for SMS notifications")
    twilio_sms_webhook_url: str | None = Field(
        None, description="The exact URL set as the numbers' SMS webhook, when a proxy in front of "
        "`receptionist notify inbound` changes it (Twilio signs that URL); none: the URL requests reach",
    )
    twilio_voice_fallback_url: str | None = Field(
        None, description="The public URL of `receptionist notify inbound`'s /twilio/voice: sip.provision "
        "makes it the Twilio trunk's disaster-recovery URL, where Twilio sends calls no worker can take "
        "(Twilio signs that URL, and the TwiML's other requests go to its host); none: not set on the trunk",
    )
    notify_webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key that signs webhook notifications (required for webhooks)"
    )
    # a target down for 10 minutes still gets its messages: 5 s doubling to 5 min, 12 attempts ~ 35 min
    outbox_max_attempts: int = Field(12, ge=1, le=100, description="Attempts before a notification is dead")
    outbox_backoff_s: float = Field(5.0, gt=0, description="Wait (s) after the first failed attempt; doubles")
    outbox_backoff_max_s: float = Field(300.0, gt=0, description="Longest wait (s) between two attempts")
    outbox_poll_s: float = Field(0.5, gt=0, le=60, description="How often (s) a sender looks for due notifications")
    # The owner's CalDAV calendars (brain `calendar.caldav`), read by `receptionist notify run`
    caldav_refresh_s: float = Field(
        30.0, ge=1, le=3600,
        description="How often (s) a sender reads the owners' CalDAV events into the local copy calls use; "
        "a copy three refreshes old is stale (the call is flagged calendar_stale)",
    )  # fmt: skip
    # The owner's console (`receptionist web`)
    web_secure_cookies: bool = Field(
        False,
        description="Mark the console's cookies Secure: set it when the console is served over TLS "
        "(directly or behind a TLS-terminating proxy)",
    )

    web_public_url: str = Field(
        "http://127.0.0.1:8080",
        description="Where owners reach the console (scheme, host, port): the start of the calendar feed URLs",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["livekit", "json"] = Field(
        "livekit",
        description="livekit: LiveKit's choice (JSON lines in start, coloured text in dev and console); "
        "json: JSON lines in every mode, e.g. a dev worker feeding a log collector",
    )

    def price_table(self) -> PriceTable:
        return PriceTable(
            model=self.openai_realtime_model,
            text_input=self.price_text_input,
            text_cached_input=self.price_text_cached_input,
            text_output=self.price_text_output,
            audio_input=self.price_audio_input,
            audio_cached_input=self.price_audio_cached_input,
            audio_output=self.price_audio_output,
            as_of=self.prices_as_of,
            telephony_per_minute=self.twilio_trunk_per_minute + self.livekit_sip_per_minute,
        )

    @field_validator("twilio_voice_fallback_url")
    @classmethod
    def _fallback_url(cls, v: str | None) -> str | None:
        # the provisioning sets it on the trunk: one rule for both
        from sip.plan import check_voice_fallback_url

        return check_voice_fallback_url(v)

    @field_validator("audio_bucket")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        if not v:
            return None
        from agent.store.audio import AudioBucket, AudioBucketInvalid

        try:
            AudioBucket.parse(v)
        except AudioBucketInvalid:
            raise ValueError("write s3://bucket or s3://bucket/prefix (a bucket name is 3-63 lower-case "
                             "letters, digits, dots and dashes)") from None  # fmt: skip
        return v

    def livekit_secret(self) -> str:
        return self.livekit_api_secret.get_secret_value() if self.livekit_api_secret else ""


# A call costs its worker about 16% of a core while it talks and 15% while both sides are silent, over
# the real WebRTC path (README, Operations: bench.fleet on a 2-core Xeon VM); five a core leaves room
# for the greetings of a burst and the worker's own process.
CALLS_PER_CORE = 5
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores() -> float:
    """The cores this process may run on: its CPU affinity, lowered by a cgroup v2 quota (`docker run
    --cpus`, a Kubernetes CPU limit) when one is set."""
    cores = float(len(os.sched_getaffinity(0)))
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max" and float(period) > 0:
            cores = min(cores, float(quota) / float(period))
    except (OSError, ValueError):
        pass  # no cgroup v2 file, or one this does not read: the affinity stands
    return cores


def default_max_calls() -> int:
    return max(1, math.floor(CALLS_PER_CORE * usable_cores()))


def default_overflow_calls() -> int:
    return max(1, math.floor(usable_cores()))


def max_calls_basis(settings: Settings) -> str:
    """Where `settings.worker_max_calls` came from, for the worker's start-up line."""
    if "worker_max_calls" in settings.model_fields_set:
        return "WORKER_MAX_CALLS"
    return f"{CALLS_PER_CORE} a core, {usable_cores():g} cores usable"


def environment() -> dict[str, str | None]:
    """Variables as the settings read them, for those the Settings class does not hold (a CalDAV
    account's password, named in a brain): the process environment, else `.env`; a variable
    exported empty is empty, not `.env`'s."""
    from dotenv import dotenv_values

    return {**dotenv_values(".env"), **os.environ}


def _missing(var: str) -> str:
    return f"missing required setting {var} (set it in the environment or .env)"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, or a clean exit naming each missing/invalid variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        lines = []
        for err in e.errors():
            var = str(err["loc"][0]).upper() if err["loc"] else "?"
            if err["type"] == "missing":
                lines.append(_missing(var))
            else:
                # never echo the offending value: it may be a secret
                lines.append(f"invalid setting {var}: {err['msg']}")
        raise SettingsError("\n".join(lines)) from None


def require(settings: Settings, *names: str) -> None:
    """A clean exit naming each setting a command needs that the environment leaves empty (settings
    that are optional elsewhere, such as the LiveKit credentials outside console mode)."""
    missing = [name.upper() for name in names if not getattr(settings, name)]
    if len(missing) == 1:
        raise SettingsError(_missing(missing[0]))
    if missing:  # one line for all of them: a supervisor's log shows the whole problem at once
        raise SettingsError(f"missing required settings {', '.join(missing)} (set them in the environment or .env)")
