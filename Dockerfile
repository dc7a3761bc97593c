# One image for every Questline process (web, worker, scheduler); the command picks the role.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY questline questline
COPY engine engine
COPY workers workers
COPY lti lti
COPY webhooks webhooks
COPY widgets widgets
COPY identity identity
RUN pip install --no-cache-dir .
RUN useradd --system questline
USER questline
EXPOSE 8000
CMD ["questline", "serve", "--host", "0.0.0.0", "--port", "8000"]
