# syntax=docker/dockerfile:1
# Daily AI Insights: one image for web (gunicorn), worker and beat (celery); see docker-compose.yml.

# --- builder: compile what needs compiling into a virtualenv -----------------------------------
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libpq-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt

# --- runtime -------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
# fonts-nanum: Hangul for the chart from the system (koreanize-matplotlib's copy is the fallback).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-nanum \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system app \
    && useradd --system --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=newsletter.settings \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/app/var/media \
    EMAIL_FILE_PATH=/app/var/sent-emails \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY . .
# collectstatic runs with production settings, which need a SECRET_KEY; this one exists only
# during this step and is not kept in the image.
ARG BUILD_SECRET_KEY=collectstatic-only-not-a-real-secret
RUN DEBUG=false SECRET_KEY="$BUILD_SECRET_KEY" python manage.py collectstatic --noinput \
    && mkdir -p /app/var \
    && chown -R app:app /app/var
USER app
EXPOSE 8000
# /healthz touches the database. The Host header is the first of ALLOWED_HOSTS, so the check
# passes the host validation that a production ALLOWED_HOSTS enforces.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; host = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.'); host = 'localhost' if host in ('', '*') else host; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8000/healthz', headers={'Host': host}), timeout=4)"]
CMD ["gunicorn", "newsletter.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
