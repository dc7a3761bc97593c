"""An LTI 1.3 platform we did not write (``lti1p3platform`` from PyPI), served on loopback.

The library is the platform's protocol engine: it builds and signs id_tokens, issues service
access tokens after verifying the tool's client assertion against the tool's JWKS, and verifies
deep-linking responses. This file is only the glue: a small werkzeug app exposing its JWKS, the
OIDC auth endpoint (answering with an auto-posting form), the token endpoint, the deep-link
return URL, and AGS line items / scores and NRPS memberships backed by in-memory lists. It also
checks what the library does not: the client assertion's ``aud`` and ``jti``, and that the tool
echoes ``login_hint`` and ``lti_message_hint``.
"""

from __future__ import annotations

import functools
import html
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.registration import Registration
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


def new_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@functools.cache
def platform_private_key() -> str:
    """One platform key per test process: RSA generation costs ~0.1-0.3 s, and every test's
    platform is a fresh registration anyway (tests that need a stranger's key make one)."""
    return new_private_key()


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class User:
    sub: str
    name: str
    email: str
    roles: list[str]


class PlatformConf(LTI1P3PlatformConfAbstract):  # type: ignore[misc]
    """The library's platform configuration, holding one registration of the tool."""

    def init_platform_config(self, **kwargs: Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return self._registration


class PlatformLaunch(LTIAdvantageMessageLaunchAbstract):  # type: ignore[misc]
    """The library's launch builder; the preflight response is the auth request's query."""

    def get_preflight_response(self) -> dict[str, Any]:
        return dict(self._request)

    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> str:
        return (
            f'<form method="post" action="{html.escape(launch_data["launch_url"])}">'
            f'<input type="hidden" name="id_token" value="{launch_data["id_token"]}">'
            f'<input type="hidden" name="state" value="{html.escape(launch_data["state"])}">'
            "</form>"
        )


@dataclass
class Platform:
    """One platform instance: issuer, keys, the tool's registration, users and course state."""

    tool_url: str
    client_id: str = "questline-client"
    deployment_id: str = "deployment-1"
    context_id: str = "course-101"
    private_key: str = field(default_factory=platform_private_key)
    users: dict[str, User] = field(default_factory=dict)
    line_items: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    deep_link_items: list[dict[str, Any]] = field(default_factory=list)
    deep_link_data: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seen_jtis: set[str] = field(default_factory=set)
    base: str = ""
    # Overrides for the next id_token: extra claims or a lifetime in seconds.
    id_token_expiration: int = 300
    custom: dict[str, str] = field(default_factory=dict)
    # How many score posts to refuse with a 503 before accepting (to exercise retries).
    fail_scores: int = 0
    # Dynamic registration: the token the platform hands out, and the requests it received.
    registration_token: str = "reg-token-1"
    registrations: list[dict[str, Any]] = field(default_factory=list)
    openid_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.base

    def registration(self) -> Registration:
        reg = Registration()
        reg.set_iss(self.issuer).set_client_id(self.client_id).set_deployment_id(
            self.deployment_id
        ).set_oidc_login_url(self.tool_url + "/lti/login").set_launch_url(
            self.tool_url + "/lti/launch"
        ).set_tool_key_set_url(self.tool_url + "/lti/jwks").set_platform_public_key(
            public_pem(self.private_key)
        ).set_platform_private_key(self.private_key)
        return reg

    def conf(self) -> PlatformConf:
        return PlatformConf(registration=self.registration())

    # --- the endpoints -------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self.route(request)
        except Exception as exc:  # the platform answers 400 to what it refuses
            response = Response(f"{type(exc).__name__}: {exc}", status=400)
        return response(environ, start_response)

    def route(self, request: Request) -> Response:
        path = request.path
        if path == "/jwks":
            return _json(self.conf().get_jwks())
        if path == "/.well-known/openid-configuration":
            return self.openid_configuration(request)
        if path == "/register":
            return self.register_tool(request)
        if path == "/auth":
            return self.auth(request)
        if path == "/token":
            return self.token(request)
        if path == "/deep_link_return":
            conf = self.conf()
            conf.get_registration()
            items = conf.validate_deeplinking_resp({"JWT": request.form["JWT"]})
            body = jwt.decode(request.form["JWT"], options={"verify_signature": False})
            self.deep_link_data.append(
                body.get("https://purl.imsglobal.org/spec/lti-dl/claim/data")
            )
            self.deep_link_items.extend(items)
            return Response("content items saved")
        if path == "/lineitems":
            self.check_token(request, "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem")
            if request.method == "POST":
                item = json.loads(request.get_data())
                item["id"] = f"{self.base}/lineitems/{len(self.line_items) + 1}"
                self.line_items.append(item)
                return _json(item, "application/vnd.ims.lis.v2.lineitem+json")
            wanted = request.args.get("tag")
            items = [i for i in self.line_items if not wanted or i.get("tag") == wanted]
            return _json(items, "application/vnd.ims.lis.v2.lineitemcontainer+json")
        match = re.fullmatch(r"/lineitems/(\d+)/scores", path)
        if match:
            self.check_token(request, "https://purl.imsglobal.org/spec/lti-ags/scope/score")
            if self.fail_scores > 0:
                self.fail_scores -= 1
                return Response("gradebook busy", status=503)
            score = json.loads(request.get_data())
            score["lineitem"] = f"{self.base}/lineitems/{match.group(1)}"
            self.scores.append(score)
            return Response("", status=204)
        if path == "/memberships":
            self.check_token(
                request, "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
            )
            members = [
                {
                    "user_id": u.sub,
                    "name": u.name,
                    "email": u.email,
                    "roles": u.roles,
                    "status": "Active",
                }
                for u in self.users.values()
            ]
            return _json(
                {"id": path, "context": {"id": self.context_id}, "members": members},
                "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
            )
        return Response("not found", status=404)

    def auth(self, request: Request) -> Response:
        """The OIDC auth endpoint: check the tool's redirect, answer with the id_token form."""
        query = request.args.to_dict()
        hint = query.get("lti_message_hint", "")
        user = self.users.get(query.get("login_hint", ""))
        if user is None:
            self.problems.append(f"login_hint not echoed: {query.get('login_hint')!r}")
            return Response("unknown login_hint", status=400)
        if not hint.startswith(("link:", "deep_link")):
            self.problems.append(f"lti_message_hint not echoed: {hint!r}")
            return Response("unknown lti_message_hint", status=400)
        registration = self.registration()
        if hint == "deep_link":
            registration.set_deeplink_launch_url(self.tool_url + "/lti/launch")
        conf = PlatformConf(registration=registration)
        launch = PlatformLaunch(query, conf)
        launch.set_id_token_expiration(self.id_token_expiration)
        launch.set_user_data(user.sub, user.roles, full_name=user.name, email_address=user.email)
        launch.set_launch_context_claim(self.context_id, context_title="Introduction to Testing")
        if hint.startswith("link:"):
            launch.set_resource_link_claim(hint.removeprefix("link:"), title="Questline")
        if self.custom:
            launch.set_custom_parameters_claim(dict(self.custom))
        launch.set_nrps(self.base + "/memberships")
        launch.set_ags(self.base + "/lineitems")
        if hint == "deep_link":
            launch.set_dl(
                self.base + "/deep_link_return",
                title="Add Questline",
                accept_types={"ltiResourceLink"},
                extra_data={"opaque": "round-trip-42"},
            )
        return Response(launch.lti_launch(), content_type="text/html")

    def token(self, request: Request) -> Response:
        """client_credentials with a JWT assertion, verified by the library against the tool's
        JWKS; plus our checks of the assertion's aud and jti."""
        form = request.form.to_dict()
        claims = jwt.decode(form.get("client_assertion", ""), options={"verify_signature": False})
        if claims.get("aud") not in (self.base + "/token", [self.base + "/token"]):
            self.problems.append(f"client assertion aud is {claims.get('aud')!r}")
            return Response("bad aud", status=400)
        if not claims.get("jti") or claims["jti"] in self.seen_jtis:
            self.problems.append(f"client assertion jti missing or reused: {claims.get('jti')!r}")
            return Response("bad jti", status=400)
        self.seen_jtis.add(claims["jti"])
        conf = self.conf()
        conf.get_registration()
        return _json(conf.get_access_token(form))

    def openid_configuration(self, request: Request) -> Response:
        """LTI Dynamic Registration: the platform's OpenID configuration, modelled on the one
        Moodle 4.x serves (mod/lti/openid-configuration.php). lti1p3platform has no dynamic
        registration, so this endpoint and the next are our glue, not the independent peer."""
        if request.headers.get("Authorization") != f"Bearer {self.registration_token}":
            return Response("registration token required", status=401)
        body = {
            "issuer": self.issuer,
            "token_endpoint": self.base + "/token",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": self.base + "/jwks",
            "authorization_endpoint": self.base + "/auth",
            "registration_endpoint": self.base + "/register",
            "scopes_supported": [
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
                "openid",
            ],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.1",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest"},
                    {"type": "LtiDeepLinkingRequest"},
                ],
                "variables": ["CourseSection.timeFrame.end", "Person.email.primary"],
            },
            **self.openid_overrides,
        }
        return _json(body)

    def register_tool(self, request: Request) -> Response:
        """The registration endpoint: checks the token and the request's required fields,
        issues a client id and a deployment id, and becomes configured for that client."""
        if request.headers.get("Authorization") != f"Bearer {self.registration_token}":
            return Response("registration token required", status=401)
        body = json.loads(request.get_data())
        self.registrations.append(body)
        tool = body.get("https://purl.imsglobal.org/spec/lti-tool-configuration") or {}
        required = ("initiate_login_uri", "redirect_uris", "jwks_uri", "client_name")
        missing = [k for k in required if not body.get(k)] + (
            [] if tool.get("target_link_uri") else ["target_link_uri"]
        )
        if missing or body.get("token_endpoint_auth_method") != "private_key_jwt":
            return Response(f"invalid registration: missing {missing}", status=400)
        self.client_id = f"dyn-{unique()}"
        self.deployment_id = f"dep-{unique()}"
        return _json(
            {
                **body,
                "client_id": self.client_id,
                "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                    **tool,
                    "deployment_id": self.deployment_id,
                },
            }
        )

    def check_token(self, request: Request, scope: str) -> None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        conf = self.conf()
        conf.get_registration()
        if not conf.validate_token(token, allowed_scopes=[scope]):
            raise PermissionError(f"token lacks scope {scope}")

    # --- the browser side ----------------------------------------------------------------

    def add_user(self, sub: str, name: str, roles: list[str]) -> User:
        user = User(sub, name, f"{sub}@example.edu", roles)
        self.users[sub] = user
        return user

    def start_login(
        self, browser: requests.Session, user: User, hint: str = "link:rl-1"
    ) -> dict[str, str]:
        """The platform starts a launch: the browser goes to the tool's login URL and follows
        the redirect to our auth endpoint; returns the auto-post form (action + fields)."""
        response = browser.get(
            self.tool_url + "/lti/login",
            params={
                "iss": self.issuer,
                "login_hint": user.sub,
                "target_link_uri": self.tool_url + "/lti/launch",
                "lti_message_hint": hint,
                "client_id": self.client_id,
                "lti_deployment_id": self.deployment_id,
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return parse_form(response.text)

    def launch(
        self, browser: requests.Session, user: User, hint: str = "link:rl-1"
    ) -> requests.Response:
        form = self.start_login(browser, user, hint)
        return post_form(browser, form)

    def sign(self, claims: dict[str, Any], key: str | None = None, kid: str | None = None) -> str:
        """Re-sign (possibly tampered) claims as this platform would, or with another key."""
        private = key or self.private_key
        header_kid = kid or Registration.get_jwk(public_pem(self.private_key))["kid"]
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": header_kid})


def parse_form(page: str) -> dict[str, str]:
    """An auto-posting form's action and hidden fields (a browser would run its script)."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page)
    assert action is not None, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return {
        "_action": html.unescape(action.group(1)),
        **{k: html.unescape(v) for k, v in fields.items()},
    }


def post_form(browser: requests.Session, form: dict[str, str]) -> requests.Response:
    data = {k: v for k, v in form.items() if k != "_action"}
    return browser.post(form["_action"], data=data, timeout=10)


def _json(body: Any, content_type: str = "application/json") -> Response:
    return Response(json.dumps(body), content_type=content_type)


@contextmanager
def serve(app: Any, *, threaded: bool = True) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port for the duration of the block."""
    server = make_server("127.0.0.1", 0, app, threaded=threaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def unique() -> str:
    return uuid.uuid4().hex[:8]
