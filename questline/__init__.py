"""Questline: the app factory. It only wires settings, database, blueprints and error handlers;
it runs no migrations and makes no network calls (STYLE 3)."""

from __future__ import annotations

from flask import Flask

from questline.settings import Settings, load_settings

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    context: object | None = None,
    demo_tenant: str | None = None,
) -> Flask:
    """Build the WSGI app. ``context`` (a ``workers.context.Context``) may be shared with a
    worker or a test; by default one is built from ``settings``."""
    from questline.api import bp as api_bp
    from questline.errors import register_error_handlers
    from questline.ops import bp as ops_bp
    from questline.rules_api import bp as rules_api_bp
    from questline.sessions import QuestlineSessionInterface
    from questline.tenants import KeyCache
    from widgets.pages import bp as widgets_bp
    from workers.context import Context, build_context

    settings = settings or load_settings()
    ctx = context if isinstance(context, Context) else build_context(settings)
    app = Flask("questline", template_folder=None)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        QUESTLINE_DEMO_TENANT=demo_tenant,
    )
    app.extensions["questline"] = ctx
    app.session_interface = QuestlineSessionInterface()
    app.extensions["questline_keys"] = KeyCache()
    register_error_handlers(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(widgets_bp)
    app.register_blueprint(rules_api_bp)
    app.register_blueprint(__import__("questline.league_api").league_api.bp)  # issue 4
    app.register_blueprint(__import__("webhooks.views").views.bp)
    app.register_blueprint(__import__("webhooks.admin_api").admin_api.bp)  # issue 6: admin API
    app.register_blueprint(__import__("lti.views").views.bp)  # issue 5: /lti/...
    app.register_blueprint(__import__("identity.views").views.bp)  # issue 8: /sso, /me
    app.register_blueprint(__import__("credentials.views").views.bp)  # issue 9: /ob/...
    return app
