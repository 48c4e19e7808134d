# syntax=docker/dockerfile:1
# ---- build: wheels for the service and its locked dependencies -----------------------
FROM python:3.11-slim-bookworm AS build
# gcc for the AMI parser's C speed-up (setup.py); it stays in this stage only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python -m venv /opt/acd
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY app ./app
RUN /opt/acd/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/acd/bin/pip install --no-cache-dir -c constraints.txt .

# ---- runtime: the venv, the data files, a non-root user ------------------------------
FROM python:3.11-slim-bookworm
# A fixed UID/GID (10001): Kubernetes' runAsNonRoot can only check a numeric user, and
# deploy/kubernetes runs the pods as this one (runAsUser/runAsGroup 10001).
RUN groupadd --system --gid 10001 acd \
 && useradd --system --uid 10001 --gid acd --home-dir /srv/acd --shell /usr/sbin/nologin acd
COPY --from=build /opt/acd /opt/acd
WORKDIR /srv/acd
COPY migrations ./migrations
COPY ivr_flows ./ivr_flows
COPY asterisk_config ./asterisk_config
RUN mkdir -p /srv/acd/var && chown -R acd:acd /srv/acd/var
ENV PATH=/opt/acd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ACD_HTTP_HOST=0.0.0.0 \
    ACD_AGI_HOST=0.0.0.0 \
    ACD_DATABASE_URL=sqlite:////srv/acd/var/acd.db \
    MPLCONFIGDIR=/srv/acd/var/matplotlib
# (matplotlib draws the report charts and keeps its font cache there: the home is not
# writable, and without it every start would warn and rebuild the cache.)
USER acd
EXPOSE 8000 4573
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
CMD ["acd", "serve", "--migrate"]
