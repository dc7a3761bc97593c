"""Run the WSGI app under gunicorn from our own CLI (``questline serve`` and ``demo``)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn with options from code, so ``questline serve`` needs no config file."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def serve(app: Flask, *, host: str, port: int, workers: int, threads: int) -> None:
    """Serve until interrupted. The app is loaded before forking; database pools are disposed
    first so each worker opens its own connections."""
    ctx = app.extensions["questline"]
    ctx.db.dispose()
    GunicornServer(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "preload_app": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "timeout": 60,
            "keepalive": 5,
        },
    ).run()
