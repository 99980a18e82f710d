# The worker image: one process registers with LiveKit and runs calls; scale by adding replicas.
FROM python:3.11-slim-bookworm
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libportaudio2 \
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
ENV BRAIN_PATH=/app/brains LOG_LEVEL=INFO
# fail fast: settings and brains are validated before the worker registers, and `start` refuses a
# database schema behind this code. It never migrates: run the image once per release first, e.g.
#   docker run --rm -e DATABASE_URL=... receptionist receptionist db migrate
CMD ["python", "-m", "agent.worker", "start"]
