"""What every call's job process needs before its call, done once in LiveKit's forkserver.

The worker lists this module in `preload_modules` (agent/worker.py), so the forkserver imports it once
and every job process it forks inherits the result copy-on-write. A burst of calls starts a job
process for each call beyond the warm ones, on the same cores that answer the calls already up, so
each process's start is what the burst waits on. Measured per greeting-only call before this module:
~0.5 s of CPU in the process's prewarm (the brains, the tools' schemas, the VAD model) and ~0.2 s in
the call itself on first use (a TLS context for LiveKit's API client, the Realtime event models).

Only fork-safe work: no thread, no event loop, nothing of livekit-rtc's runtime (its FFI client starts
threads), which is why the fallback audio (resampled through livekit-rtc) stays in prewarm. Where no
forkserver ran this (console's job threads), prewarm imports it and so pays the same costs once.

An owner's edit to a brain file still reaches every job process started after it, as when each
process loaded the brains itself: `warm()` reloads them when a brain file (or `.env`) changed since.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from pathlib import Path

from livekit.plugins import silero

from agent.brain import BrainDirectory, load_brains
from agent.flows.appointments import task_tools as appointment_task_tools
from agent.flows.booking import task_tools as booking_task_tools
from agent.receptionist import receptionist_tools
from agent.settings import Settings, load_settings

log = logging.getLogger("receptionist.worker")

FileStamp = tuple[str, int, int] | tuple[str, None, None]


@dataclasses.dataclass(frozen=True)
class Warm:
    settings: Settings
    brains: BrainDirectory
    vad: silero.VAD
    # what these were loaded from: the environment, and the brain files and `.env` as they were
    environ: dict[str, str] = dataclasses.field(repr=False)  # secrets among them
    files: tuple[FileStamp, ...]


_warm: Warm | None = None
# console's job threads start together and would each load everything at once (pydantic building the
# same tool models on two threads, two ONNX sessions): the second waits and takes what the first loaded
_loading = threading.Lock()


def warm() -> Warm:
    """Settings, every brain and the VAD model: as loaded before (here, in the forkserver), or loaded
    now if the environment, a brain file or `.env` changed since."""
    with _loading:
        return _warm_locked()


def _warm_locked() -> Warm:
    global _warm
    if _warm is not None and _warm.environ == os.environ and _warm.files == _stamps(_warm.settings.brain_path):
        return _warm
    # the settings are cheap to read again; the brains and the VAD are loaded again only if what they
    # come from changed (LiveKit's worker sets LIVEKIT_URL and the like after this module loaded: in
    # console, each job thread would otherwise load every brain again)
    environ = dict(os.environ)
    settings = load_settings()
    files = _stamps(settings.brain_path)  # before loading: an edit made while loading is seen next time
    if _warm is not None and _warm.files == files and _warm.settings.brain_path == settings.brain_path:
        brains = _warm.brains
    else:
        if _warm is not None:  # each new process pays this until the worker restarts
            log.info("the brains changed since the worker started: loading them again")
        brains = load_brains(settings.brain_path)
        _tool_schemas(brains)
    silence = settings.vad_min_silence_duration
    if _warm is not None and _warm.settings.vad_min_silence_duration == silence:
        vad = _warm.vad
    else:
        vad = silero.VAD.load(min_silence_duration=silence)
    _warm = Warm(settings=settings, brains=brains, vad=vad, environ=environ, files=files)
    return _warm


def _stamps(brain_path: str | Path) -> tuple[FileStamp, ...]:
    root = Path(brain_path)
    paths = [root, *sorted(root.iterdir())] if root.is_dir() else [root]
    stamps: list[FileStamp] = []
    for path in [*paths, Path(".env")]:
        try:
            st = path.stat()
        except OSError:
            stamps.append((str(path), None, None))
        else:
            stamps.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def _tool_schemas(brains: BrainDirectory) -> None:
    """Every tool's JSON schema built once: pydantic builds and caches a model per tool signature
    (100-150 ms on a call's loop otherwise)."""
    from livekit.agents.llm.utils import build_legacy_openai_schema

    for brain in brains.all:
        for tool in [*receptionist_tools(brain), *booking_task_tools(brain), *appointment_task_tools(brain)]:
            build_legacy_openai_schema(tool, internally_tagged=True)


def _first_use() -> None:
    """Lazy one-time work the call would otherwise do on its loop: the TLS context LiveKit's API
    client builds from the CA bundle (~100 ms), the Realtime event models pydantic builds on their
    first use (~80 ms over a call), LiveKit's hyphenation patterns for the transcript's word timing
    (~25 ms), imports done on first use."""
    import av.subtitles.stream  # noqa: F401 - the call recorder's first file
    import numpy.fft  # noqa: F401 - the speaking-rate estimate
    import numpy.ma  # noqa: F401 - numpy.unique, the same
    import redis.asyncio.cluster  # noqa: F401
    from livekit.agents.llm import async_toolset  # noqa: F401 - the agent's first activity
    from livekit.agents.tokenize.basic import hyphenate_word
    from livekit.agents.voice import report  # noqa: F401 - the session report at the call's end
    from pydantic import BaseModel

    from agent import (
        livekit_internals,
        noise_gate,  # noqa: F401 - the call's VAD
        speaking_rate,
    )

    livekit_internals.warm_api_tls_context()
    speaking_rate.install()
    hyphenate_word("receptionist")
    for name, module in list(sys.modules.items()):
        if not name.startswith(("openai.types.realtime", "livekit.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == name:
                if not value.__pydantic_complete__:  # built on first use (`defer_build`)
                    value.model_rebuild(raise_errors=False)  # one that cannot is built when used


try:
    warm()
    _first_use()
except (Exception, SystemExit):  # noqa: BLE001 - prewarm loads again and reports the error
    log.debug("could not preload the receptionist", exc_info=True)
