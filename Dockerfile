# The worker image: one process registers with LiveKit and runs calls; scale by adding replicas.
FROM python:3.11-slim-bookworm
# espeak-ng renders, as the worker starts, what callers hear when the model is down (a job process
# refuses to start without it); libportaudio2 is the console's audio
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends espeak-ng libportaudio2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent ./agent
# the simulator stays out: it is for tests and demos, and nothing the worker runs imports it
COPY sip ./sip
COPY web ./web
COPY brains ./brains
# the Silero VAD model ships inside livekit-plugins-silero: nothing to download at build time
RUN pip install --no-cache-dir .
# not root: the worker needs no privilege, only its own var/ (spill files, voicemail, recordings,
# rendered fallback lines, kept greetings; mount a volume at /app/var/spill so spilled records
# outlive the container)
RUN useradd --system --uid 10001 --home-dir /app --no-create-home receptionist \
    && mkdir -p /app/var/spill /app/var/voicemail /app/var/recordings /app/var/fallback-audio \
       /app/var/greetings \
    && chown -R receptionist:receptionist /app/var
USER 10001
ENV BRAIN_PATH=/app/brains LOG_LEVEL=INFO HEALTH_PORT=8091
EXPOSE 8089 8091
# 503 (model unreachable) or no answer marks the container unhealthy; degraded (Postgres or Redis
# down) stays healthy: calls are still answered. No curl in the slim image, so Python asks.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"HEALTH_PORT\"]}/health', timeout=8)"]
# fail fast: settings and brains are validated before the worker registers, and `start` refuses a
# database schema behind this code. It never migrates: run the image once per release first, e.g.
#   docker run --rm -e DATABASE_URL=... receptionist receptionist db migrate
CMD ["python", "-m", "agent.worker", "start"]
