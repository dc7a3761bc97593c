"""pylti1p3 wrapped once: its OIDC login and message launch, bound to our tables, with an
explicit validate step whose every failure is a typed ``LtiRejected`` naming the reason.

State and nonce are signed, not stored (``lti.login_state``), and not in a Flask session, so a
launch from an iframe whose browser blocks third-party cookies still validates: the state must
be one we issued, for this registration and unexpired, and the id_token's nonce must be the one
derived from it. When the state cookie did reach us it must match too. Each nonce is accepted
once per registration, which makes each state single-use.

Cost matters here (a class opening a link at once): a login reads and writes nothing in the
database (registrations are cached per process), and a launch's checks end in one statement
that records the nonce and confirms the deployment is still registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import jwt
from pylti1p3.contrib.flask.cookie import FlaskCookieService
from pylti1p3.exception import LtiException
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.oidc_login import OIDCLogin
from pylti1p3.request import Request
from pylti1p3.session import SessionService
from sqlalchemy import exists, select, text
from sqlalchemy.orm import Session

from lti import login_state
from lti.errors import LtiRejected, rejected
from lti.login_state import LOGIN_STATE_LIFETIME, LoginState
from lti.models import LtiDeployment, LtiUsedNonce
from lti.tool_config import DbToolConf, QuestlineRegistration

# Clock skew tolerated on exp / iat / nbf.
LEEWAY_SECONDS = 10
MESSAGE_TYPES = {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DEPLOYMENT_CLAIM = CLAIM + "deployment_id"
MESSAGE_TYPE_CLAIM = CLAIM + "message_type"
VERSION_CLAIM = CLAIM + "version"


class LtiRequest(Request):  # type: ignore[misc]
    """A request as pylti1p3 sees it, built explicitly from the Flask request (no globals)."""

    def __init__(self, params: Mapping[str, str], cookies: Mapping[str, str], secure: bool):
        super().__init__()
        self._params = dict(params)
        self._cookies = dict(cookies)
        self._secure = secure
        self._session: dict[str, Any] = {}

    @property
    def session(self) -> dict[str, Any]:
        """pylti1p3's default session storage wants a mapping; our state is in the database."""
        return self._session

    def get_param(self, key: str) -> str | None:
        return self._params.get(key)

    def get_cookie(self, key: str) -> str | None:
        return self._cookies.get(key)

    def is_secure(self) -> bool:
        return self._secure


class Login(OIDCLogin):  # type: ignore[misc]
    """Third-party initiated login: check the issuer and client, remember state and nonce."""

    def __init__(self, request: LtiRequest, config: DbToolConf, secret: str, now: datetime):
        self.cookies = FlaskCookieService(request)
        super().__init__(request, config, SessionService(request), self.cookies)
        self.secret = secret
        self.now = now
        self.issued: LoginState | None = None
        self.nonce: str | None = None

    def get_redirect(self, url: str) -> Any:  # pragma: no cover - we build the URL ourselves
        raise NotImplementedError

    def redirect_url(self, launch_url: str) -> str:
        """The platform's auth URL to send the browser to (pylti1p3's parameters)."""
        registration: QuestlineRegistration = self.validate_oidc_login()
        target = self._get_request_param("target_link_uri")
        if target and not target.startswith(launch_url.rsplit("/lti/", 1)[0]):
            raise rejected("wrong_target", f"target_link_uri {target!r} is not a Questline URL")
        storage_target = self._get_request_param("lti_storage_target") or None
        if storage_target is not None and len(storage_target) > login_state.MAX_TARGET:
            raise rejected("invalid_login", "lti_storage_target is not a frame name")
        self.issued = login_state.issue(self.secret, registration.id, self.now, storage_target)
        state = self.issued.state
        nonce = self.nonce = login_state.nonce_for(self.secret, state)
        self.cookies.set_cookie(state, state, int(LOGIN_STATE_LIFETIME.total_seconds()))
        params = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": registration.get_client_id(),
            "redirect_uri": launch_url,
            "state": state,
            "nonce": nonce,
            "login_hint": self._get_request_param("login_hint"),
        }
        hint = self._get_request_param("lti_message_hint")
        if hint:
            params["lti_message_hint"] = hint
        base = registration.get_auth_login_url()
        return base + ("&" if "?" in base else "?") + urlencode(params)


class Launch(MessageLaunch):  # type: ignore[misc]
    """A message launch validated step by step; each step raises ``LtiRejected``."""

    def __init__(
        self,
        request: LtiRequest,
        config: DbToolConf,
        session: Session,
        now: datetime,
        secret: str,
    ):
        super().__init__(request, config, SessionService(request), FlaskCookieService(request))
        self.set_auto_validation(enable=False)
        self.db_session = session
        self.now = now
        self.secret = secret
        self._client_id: str | None = None
        self.registration: QuestlineRegistration | None = None
        self.login: LoginState | None = None
        # Whether this browser's state cookie came with the launch (the binding to the browser
        # that logged in); without it a postMessage-storage login is checked by the launch page.
        self.cookie_seen = False

    def _get_request_param(self, key: str) -> str | None:
        return self._request.get_param(key)  # type: ignore[no-any-return]

    @property
    def claims(self) -> dict[str, Any]:
        return dict(self._jwt.get("body", {}))

    def get_client_id(self) -> str:
        assert self._client_id is not None
        return self._client_id

    def run(self) -> Launch:
        """Validate everything. Order: format, issuer/audience, signature and times, deployment,
        message, then (only for a genuine token) nonce and state, which write."""
        if not self._get_request_param("id_token"):
            raise rejected("missing_id_token", "the launch carries no id_token")
        if not self._get_request_param("state"):
            raise rejected("state_mismatch", "the launch carries no state")
        try:
            self.validate_jwt_format()
        except LtiException:
            raise rejected("malformed_token", "the id_token is not a JWT") from None
        self._validate_audience()
        self.validate_registration()
        self._validate_signature()
        self._validate_deployment()
        self._validate_message()
        self._check_state()
        self._consume_nonce()
        self._validated = True
        return self

    def _validate_audience(self) -> None:
        body = self.claims
        if not isinstance(body.get("iss"), str) or not body["iss"]:
            raise rejected("wrong_issuer", "the id_token has no issuer")
        aud = body.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        audiences = [a for a in audiences if isinstance(a, str) and a]
        if not audiences:
            raise rejected("wrong_audience", "the id_token has no audience")
        azp = body.get("azp")
        if azp is not None:
            if azp not in audiences:
                raise rejected("wrong_azp", f"azp {azp!r} is not one of the token's audiences")
            self._client_id = azp
        elif len(audiences) > 1:
            raise rejected("wrong_azp", "a token with several audiences must name azp")
        else:
            self._client_id = audiences[0]

    def validate_registration(self) -> Launch:
        config: DbToolConf = self._tool_config
        self.registration = config.find_registration_by_params(self.claims["iss"], self._client_id)
        self._registration = self.registration
        return self

    def _validate_signature(self) -> None:
        assert self.registration is not None
        config: DbToolConf = self._tool_config
        url = self.registration.get_key_set_url()
        header = self._jwt.get("header", {})
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or not kid:
            raise rejected("unknown_kid", "the id_token names no key (kid)")
        if alg not in ALGORITHMS:
            raise rejected("bad_signature", f"the id_token's algorithm {alg!r} is not accepted")
        public_key = config.jwks.public_key(url, kid, alg)
        if public_key is None:
            # Unknown kid: the platform may have rotated. Look once more, then refuse.
            public_key = config.jwks.public_key(url, kid, alg, refresh=True)
            if public_key is None:
                raise rejected("unknown_kid", f"the platform's key set has no key {kid!r}")
        try:
            jwt.decode(
                self._get_id_token(),
                public_key,
                algorithms=[alg],
                audience=self._client_id,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "nonce", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise rejected("token_expired", "the id_token has expired") from None
        except jwt.ImmatureSignatureError:
            raise rejected("token_not_yet_valid", "the id_token is dated in the future") from None
        except jwt.InvalidAudienceError:
            raise rejected("wrong_audience", "the id_token is not addressed to us") from None
        except jwt.InvalidSignatureError:
            raise rejected("bad_signature", "the id_token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise rejected("malformed_token", f"the id_token lacks {exc.claim!r}") from None
        except jwt.InvalidTokenError as exc:
            raise rejected("malformed_token", f"the id_token is invalid: {exc}") from None

    def _validate_deployment(self) -> None:
        """Present here; registered is checked by ``_consume_nonce``'s statement."""
        deployment_id = self.claims.get(DEPLOYMENT_CLAIM)
        if not deployment_id or not isinstance(deployment_id, str):
            raise rejected("missing_deployment", "the id_token has no deployment_id")

    def _validate_message(self) -> None:
        message_type = self.claims.get(MESSAGE_TYPE_CLAIM)
        if message_type not in MESSAGE_TYPES:
            raise rejected(
                "wrong_message_type", f"message type {message_type!r} is not one Questline serves"
            )
        version = self.claims.get(VERSION_CLAIM)
        if version != "1.3.0":
            raise rejected("wrong_lti_version", f"LTI version {version!r}; expected 1.3.0")
        try:
            self.validate_message()
        except LtiException as exc:
            raise rejected("invalid_message", f"the launch message is invalid: {exc}") from None

    def _check_state(self) -> None:
        """The state is one we issued for this registration and unexpired, the id_token's
        nonce is the one derived from it, and this browser's cookie (if it came) agrees."""
        assert self.registration is not None
        state = self._get_request_param("state")
        issued = login_state.verify(self.secret, state, self.now)
        if issued is None or issued.registration_id != self.registration.id:
            raise rejected("state_mismatch", "the state is unknown, expired or another platform's")
        if login_state.nonce_for(self.secret, state) != self.claims["nonce"]:
            raise rejected("state_mismatch", "the id_token was not issued for this login")
        cookie = self._cookie_service.get_cookie(state)
        if cookie is not None and cookie != state:
            raise rejected("state_mismatch", "the state does not match this browser's cookie")
        self.login = issued
        self.cookie_seen = cookie is not None

    def _consume_nonce(self) -> None:
        """One statement: the deployment is (still) registered, and the nonce is recorded
        unless it was seen before. A refusal rolls the caller's transaction back."""
        assert self.registration is not None
        values = {
            "registration_id": self.registration.id,
            "deployment_id": self.claims[DEPLOYMENT_CLAIM],
            "nonce": str(self.claims["nonce"]),
            "seen_at": self.now,
        }
        if self.db_session.get_bind().dialect.name == "postgresql":
            known, fresh = self.db_session.execute(CONSUME_NONCE, values).one()
        else:
            from questline.ingest import upsert_ignore

            known = self.db_session.scalar(
                select(
                    exists().where(
                        LtiDeployment.registration_id == values["registration_id"],
                        LtiDeployment.deployment_id == values["deployment_id"],
                    )
                )
            )
            fresh = known and (
                self.db_session.execute(
                    upsert_ignore(self.db_session, LtiUsedNonce).returning(LtiUsedNonce.nonce),
                    [{k: values[k] for k in ("registration_id", "nonce", "seen_at")}],
                ).first()
                is not None
            )
        if not known:
            raise rejected(
                "unknown_deployment", f"deployment {values['deployment_id']!r} is not registered"
            )
        if not fresh:
            raise rejected("nonce_replayed", "this id_token's nonce was already used")


ALGORITHMS = {"RS256", "RS384", "RS512"}
CONSUME_NONCE = text(
    """
    WITH deployment AS (
        SELECT 1 FROM lti_deployments
        WHERE registration_id = :registration_id AND deployment_id = :deployment_id
    ), used AS (
        INSERT INTO lti_used_nonces (registration_id, nonce, seen_at)
        SELECT :registration_id, :nonce, :seen_at WHERE EXISTS (SELECT 1 FROM deployment)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM deployment), EXISTS (SELECT 1 FROM used)
    """
)


def safe_rejection(exc: Exception) -> LtiRejected:
    """Anything pylti1p3 raises that slipped past the steps above, as a typed rejection."""
    if isinstance(exc, LtiRejected):
        return exc
    return LtiRejected("invalid_launch", f"the launch is invalid: {exc}")
