# The image for web, worker and scheduler (docker-compose.yml). Python 3.11, no build tools kept.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md babel.cfg ./
COPY coop ./coop
# Installed in place (-e): every entry point (the `coop` command, gunicorn, `python worker.py`)
# then runs the one copy in /app/coop, beside the templates/ and migrations/ it finds from
# there. A plain `pip install .` would put a second copy in site-packages, without them.
RUN pip install --no-cache-dir -e . \
 && pybabel compile -d coop/translations \
 && python -c "from coop.matching.branch import warm_up; warm_up()"
# The line above compiles the matching's branch and bound into Numba's cache beside the source
# the containers run (/app/coop), so that the first match in a container does not spend 20 s
# compiling.
COPY templates ./templates
COPY migrations ./migrations
COPY worker.py ./

RUN useradd --create-home --uid 10001 coop && mkdir -p /app/instance && chown coop /app/instance
USER coop
EXPOSE 8000
CMD ["gunicorn", "--preload", "--workers", "3", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "coop:create_app()"]
