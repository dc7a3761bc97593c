"""LTI Dynamic Registration 1.0 (1EdTech): the platform opens our registration URL with
``openid_configuration`` and ``registration_token``; we read the platform's configuration,
post our own client registration to its registration endpoint, and store what it answers.

Which tenant a platform feeds is not something a stranger on the internet may choose: the URL
an administrator pastes into Moodle or Canvas carries a ``tenant`` invitation signed with the
application secret (``questline lti registration-url``), valid for ``INVITATION_MAX_AGE``.
Every failure is an ``LtiRejected`` naming the reason: a bad invitation or a configuration we
cannot use is a 400, a platform that cannot be reached or refuses us is a 502.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import requests
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from lti.errors import LtiRejected
from lti.models import LtiRegistration
from lti.registrations import InvalidRegistration, register_platform

INVITATION_MAX_AGE = timedelta(days=7)
TIMEOUT_SECONDS = 10
PLATFORM_CONFIG = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
# What Questline asks for: grades (line items, scores, results) and the roster.
WANTED_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)
_SALT = "questline-lti-dynamic-registration"


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def invitation(secret: str, tenant_id: int) -> str:
    """The signed ``tenant`` parameter of a registration URL for one tenant."""
    return _serializer(secret).dumps({"tenant": tenant_id})


def tenant_of_invitation(secret: str, token: str | None) -> int:
    """The tenant an invitation was made for; refuses a missing, forged or stale one."""
    if not token:
        raise LtiRejected(
            "missing_invitation",
            "this registration URL has no tenant invitation: ask the Questline operator for "
            "the URL printed by `questline lti registration-url --tenant T`",
        )
    try:
        data = _serializer(secret).loads(token, max_age=int(INVITATION_MAX_AGE.total_seconds()))
    except SignatureExpired:
        raise LtiRejected(
            "invitation_expired", "this registration URL has expired: ask for a new one"
        ) from None
    except BadSignature:
        raise LtiRejected(
            "invalid_invitation", "this registration URL was not made by this Questline"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("tenant"), int):
        raise LtiRejected("invalid_invitation", "this registration URL names no tenant")
    return int(data["tenant"])


@dataclass(frozen=True)
class PlatformConfiguration:
    """The parts of a platform's OpenID configuration a registration needs."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    auth_audience: str | None
    scopes_supported: tuple[str, ...] | None
    product: str | None

    @classmethod
    def parse(cls, config_url: str, body: object) -> PlatformConfiguration:
        """Validate the document: every endpoint an http(s) URL, and the issuer on the same
        site as the URL the configuration came from (so a platform can only register itself;
        "same site" rather than "same host" because Canvas serves a school's configuration
        from the school's host under the issuer https://canvas.instructure.com)."""
        if not isinstance(body, Mapping):
            raise _bad("the platform's OpenID configuration is not a JSON object")
        values: dict[str, str] = {}
        for name in (
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "registration_endpoint",
        ):
            value = body.get(name)
            if not isinstance(value, str) or not _is_url(value):
                raise _bad(f"the platform's OpenID configuration has no valid {name}")
            values[name] = value
        if _site(values["issuer"]) != _site(config_url):
            raise _bad(
                f"the issuer {values['issuer']!r} is not on the site the configuration came "
                f"from ({config_url!r})"
            )
        scopes = body.get("scopes_supported")
        platform = body.get(PLATFORM_CONFIG)
        product = platform.get("product_family_code") if isinstance(platform, Mapping) else None
        audience = body.get("authorization_server")
        return cls(
            issuer=values["issuer"],
            authorization_endpoint=values["authorization_endpoint"],
            token_endpoint=values["token_endpoint"],
            jwks_uri=values["jwks_uri"],
            registration_endpoint=values["registration_endpoint"],
            auth_audience=audience if isinstance(audience, str) and audience else None,
            scopes_supported=(
                tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else None
            ),
            product=product if isinstance(product, str) else None,
        )


def _bad(message: str) -> LtiRejected:
    return LtiRejected("invalid_platform_configuration", message)


def _is_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in {"http", "https"} and bool(parsed.hostname)


def _site(url: str) -> str:
    """The registrable part of a URL's host: the last two labels, or the whole IP address."""
    host = (urlparse(url).hostname or "").lower()
    labels = host.split(".")
    if host.replace(".", "").isdigit() or len(labels) <= 2:
        return host
    return ".".join(labels[-2:])


def tool_registration(base_url: str, config: PlatformConfiguration) -> dict[str, Any]:
    """Our client registration request (LTI DR 1.0 section 3.5.2): one login and launch URL
    for both message types, our JWKS for private_key_jwt, and the service scopes we use that
    the platform says it supports."""
    launch = base_url + "/lti/launch"
    wanted = [
        s for s in WANTED_SCOPES if config.scopes_supported is None or s in config.scopes_supported
    ]
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base_url + "/lti/login",
        "redirect_uris": [launch],
        "client_name": "Questline",
        "jwks_uri": base_url + "/lti/jwks",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(wanted),
        TOOL_CONFIG: {
            "domain": urlparse(base_url).netloc,
            "target_link_uri": launch,
            "description": "Points, levels, badges, streaks and leaderboards for your course.",
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email", "locale"],
            # Canvas substitutes its user id here, which its Live Events use (lti.canvas_link);
            # other platforms pass the text through, and it is ignored.
            "custom_parameters": {"canvas_user_id": "$Canvas.user.globalId"},
            "messages": [
                {"type": "LtiResourceLinkRequest", "target_link_uri": launch},
                {
                    "type": "LtiDeepLinkingRequest",
                    "target_link_uri": launch,
                    "label": "Add a Questline widget",
                },
            ],
        },
    }


@dataclass(frozen=True)
class Registered:
    registration_id: int
    issuer: str
    client_id: str
    deployment_id: str | None
    product: str | None


def register(
    session: Session,
    http: requests.Session,
    *,
    tenant_id: int,
    base_url: str,
    openid_configuration: str | None,
    registration_token: str | None,
) -> Registered:
    """The whole exchange. The registration row is written in the caller's transaction, after
    the platform has answered: a refused registration leaves nothing behind."""
    if not openid_configuration or not _is_url(openid_configuration):
        raise LtiRejected(
            "invalid_registration_request", "the request needs an openid_configuration URL"
        )
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    body = _call(http, "GET", openid_configuration, headers, None, "fetch its configuration")
    config = PlatformConfiguration.parse(openid_configuration, body)
    answer = _call(
        http,
        "POST",
        config.registration_endpoint,
        {**headers, "Content-Type": "application/json"},
        tool_registration(base_url, config),
        "register Questline",
    )
    if not isinstance(answer, Mapping) or not isinstance(answer.get("client_id"), str):
        raise LtiRejected(
            "platform_refused_registration",
            "the platform's registration answer has no client_id",
            status=502,
        )
    client_id = str(answer["client_id"])
    tool_config = answer.get(TOOL_CONFIG)
    deployment = tool_config.get("deployment_id") if isinstance(tool_config, Mapping) else None
    deployment_id = str(deployment) if isinstance(deployment, str | int) and deployment else None
    try:
        row: LtiRegistration = register_platform(
            session,
            tenant_id=tenant_id,
            issuer=config.issuer,
            client_id=client_id,
            deployment_ids=[deployment_id] if deployment_id else [],
            auth_login_url=config.authorization_endpoint,
            auth_token_url=config.token_endpoint,
            key_set_url=config.jwks_uri,
            auth_audience=config.auth_audience,
            method="dynamic",
        )
    except InvalidRegistration as exc:
        raise LtiRejected("invalid_platform_configuration", str(exc)) from None
    return Registered(row.id, config.issuer, client_id, deployment_id, config.product)


def _call(
    http: requests.Session,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    what: str,
) -> object:
    try:
        response = http.request(method, url, headers=headers, json=body, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise LtiRejected(
            "platform_unreachable", f"could not reach the platform to {what}: {exc}", status=502
        ) from None
    if response.status_code >= 400:
        raise LtiRejected(
            "platform_refused_registration",
            f"the platform answered {response.status_code} when asked to {what}: "
            f"{response.text[:300]}",
            status=502,
        )
    try:
        return response.json()
    except ValueError:
        raise LtiRejected(
            "platform_refused_registration",
            f"the platform's answer when asked to {what} is not JSON",
            status=502,
        ) from None
