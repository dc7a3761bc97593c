"""HTTP: issuing on request, the published documents at stable URLs, downloads, the verify page.

Public (no key): issuer profiles and keys, status lists, credentials by their unguessable uuid,
OB 2.0 hosted documents, the verify page. Issuing needs the tenant API key. Every bad input is a
4xx JSON error or a verification result; nothing a visitor sends can produce a 500.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, render_template_string, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from credentials import documents, service
from credentials.baking import OB2_KEYWORD, BakingError, badge_png, bake, unbake
from credentials.keys import KeyUnavailable, public_jwk
from credentials.models import IssuedCredential
from credentials.multibase import ed25519_from_multikey
from credentials.verify import VerificationResult, parse_input, recipient_matches, verify
from questline.api import authenticate, ctx
from questline.errors import Forbidden, NotFound, ServiceUnavailable, Unprocessable
from questline.models import Player, PlayerBadge, Tenant

bp = Blueprint("credentials", __name__)

JSON_LD = "application/ld+json"
VC_JWT = "application/vc+jwt"


def _base() -> str:
    configured = ctx().settings.public_url
    return (configured or request.url_root).rstrip("/")


def _secret() -> str:
    return str(ctx().settings.secret_key)


def _ld(document: Any, *, download: str | None = None) -> Response:
    response = Response(json.dumps(document, indent=2), mimetype=JSON_LD)
    response.headers["Access-Control-Allow-Origin"] = "*"
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{download}"'
    return response


def _wants_html() -> bool:
    """Content negotiation for OB 2.0 hosted URLs: browsers get a page, clients get JSON-LD."""
    # JSON first, so a client that sends no Accept (or */*) gets the document, not a page.
    best = request.accept_mimetypes.best_match([JSON_LD, "application/json", "text/html"])
    return best == "text/html"


def _tenant(session: Session, tenant_id: int) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"no issuer {tenant_id}")
    return tenant


def _credential(session: Session, credential_uuid: str) -> IssuedCredential:
    row = service.credential_by_uuid(session, credential_uuid)
    if row is None:
        raise NotFound(f"no credential {credential_uuid}")
    return row


def _key_errors(exc: KeyUnavailable) -> ServiceUnavailable:
    return ServiceUnavailable(str(exc))


# Issuing (tenant API key)


@bp.post("/api/v1/players/<int:player_id>/badges/<int:award_id>/credential")
def issue(player_id: int, award_id: int) -> Any:
    """Issue (once; later calls return the same credential) the award as an OB 3.0 credential."""
    tenant_id = authenticate()
    base = _base()
    try:
        with ctx().db.session() as session:
            row = service.issue_for_award(
                session,
                tenant_id,
                award_id,
                base=base,
                secret=_secret(),
                now=datetime.now(UTC),
                player_id=player_id,
            )
            body = _issued_json(row, base)
    except service.NotIssuable as exc:
        raise NotFound(f"player {player_id} has no award {award_id}") from exc
    except KeyUnavailable as exc:
        raise _key_errors(exc) from exc
    return jsonify(body), 201


@bp.get("/ob/me/badges/<int:award_id>/credential")
@bp.get("/ob/me/badges/<int:award_id>/credential.<any(json, jwt, png):kind>")
def learner_download(award_id: int, kind: str = "json") -> Response:
    """The learner's own download from the badge shelf, authorised by the widget embed token
    (``?token=``, the one the shelf was opened with): their award only, issued on first use."""
    from widgets.signing import InvalidToken
    from widgets.signing import verify as verify_token

    try:
        grant = verify_token(_secret(), request.values.get("token"))
    except InvalidToken as exc:
        raise Forbidden(exc.reason) from None
    if grant.player_id is None:
        raise Forbidden("this token is not a learner's: it cannot download a credential")
    base = _base()
    try:
        with ctx().db.session() as session:
            row = service.issue_for_award(
                session,
                grant.tenant_id,
                award_id,
                base=base,
                secret=_secret(),
                now=datetime.now(UTC),
                player_id=grant.player_id,
            )
            credential_uuid, document, token = row.uuid, row.document, row.jwt
            award = session.get(PlayerBadge, row.award_id)
            seed = f"{row.tenant_id}/{award.badge_id if award else ''}"
    except service.NotIssuable as exc:
        raise NotFound(f"you have no award {award_id}") from exc
    except KeyUnavailable as exc:
        raise _key_errors(exc) from exc
    name = f"badge-{credential_uuid}.{kind}"
    if kind == "png":
        body: Any = bake(badge_png(seed), json.dumps(document, separators=(",", ":")))
        response = Response(body, mimetype="image/png")
    elif kind == "jwt":
        response = Response(token, mimetype=VC_JWT)
    else:
        response = _ld(document)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _issued_json(row: IssuedCredential, base: str) -> dict[str, Any]:
    url = service.credential_url(base, row.uuid)
    return {
        "id": row.uuid,
        "award_id": row.award_id,
        "credential": row.document,
        "jwt": row.jwt,
        "links": {
            "json": f"{url}?download=1",
            "jwt": f"{url}?format=jwt",
            "png": f"{url}.png",
            "ob2_assertion": service.assertion_url(base, row.uuid),
            "ob2_png": f"{service.assertion_url(base, row.uuid)}.png",
            "verify": f"{base}/ob/verify?id={row.uuid}",
        },
    }


# Open Badges 3.0 published documents


@bp.get("/ob/v3/issuers/<int:tenant_id>")
def issuer_profile(tenant_id: int) -> Response:
    """The issuer profile (the tenant) with its public keys: what verification methods name."""
    base = _base()
    try:
        with ctx().db.session() as session:
            tenant = _tenant(session, tenant_id)
            service.ensure_key(session, tenant_id, _secret())
            methods = service.published_methods(session, tenant_id, base)
            name = tenant.name
    except KeyUnavailable as exc:
        raise _key_errors(exc) from exc
    return _ld(
        documents.issuer_profile(service.issuer_url(base, tenant_id), name, f"{base}/", methods)
    )


@bp.get("/ob/v3/issuers/<int:tenant_id>/jwks.json")
def issuer_jwks(tenant_id: int) -> Response:
    """The same keys as a JWK set, for VC-JWT verifiers (``kid`` = verification method)."""
    base = _base()
    with ctx().db.session() as session:
        _tenant(session, tenant_id)
        methods = service.published_methods(session, tenant_id, base)
    keys = [
        public_jwk(ed25519_from_multikey(method["publicKeyMultibase"]), kid=method["id"])
        for method in methods
    ]
    response = jsonify({"keys": keys})
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/ob/v3/issuers/<int:tenant_id>/status/<int:number>")
def status_list(tenant_id: int, number: int) -> Response:
    """The tenant's signed BitstringStatusListCredential, rebuilt from award revocations:
    JSON-LD with a Data Integrity proof, or a VC-JWT when the client asks for
    ``application/vc+jwt`` (or ``?format=jwt``)."""
    if number < 1:
        raise NotFound("status lists are numbered from 1")
    as_jwt = request.args.get("format") == "jwt" or (
        request.accept_mimetypes.best_match([JSON_LD, "application/json", VC_JWT]) == VC_JWT
    )
    try:
        with ctx().db.session() as session:
            _tenant(session, tenant_id)
            document = service.signed_status_list(
                session, tenant_id, number, _base(), _secret(), datetime.now(UTC), as_jwt=as_jwt
            )
    except KeyUnavailable as exc:
        raise _key_errors(exc) from exc
    response = Response(document, mimetype=VC_JWT) if isinstance(document, str) else _ld(document)
    response.headers["Vary"] = "Accept"
    response.headers["Cache-Control"] = "max-age=60"
    return response


@bp.get("/ob/v3/credentials/<credential_uuid>")
def credential(credential_uuid: str) -> Response:
    """The signed credential (``?format=jwt`` for the VC-JWT; ``?download=1`` to save it)."""
    with ctx().db.session() as session:
        row = _credential(session, credential_uuid)
        document, token = row.document, row.jwt
    if request.args.get("format") == "jwt":
        response = Response(token, mimetype=VC_JWT)
        if request.args.get("download"):
            response.headers["Content-Disposition"] = (
                f'attachment; filename="badge-{credential_uuid}.jwt"'
            )
        return response
    download = f"badge-{credential_uuid}.json" if request.args.get("download") else None
    return _ld(document, download=download)


@bp.get("/ob/v3/credentials/<credential_uuid>.png")
def credential_png(credential_uuid: str) -> Response:
    """The badge image with the signed credential baked in (keyword openbadgecredential)."""
    with ctx().db.session() as session:
        row = _credential(session, credential_uuid)
        award = session.get(PlayerBadge, row.award_id)
        seed = f"{row.tenant_id}/{award.badge_id if award else ''}"
        document = row.document
    png = bake(badge_png(seed), json.dumps(document, separators=(",", ":")))
    response = Response(png, mimetype="image/png")
    response.headers["Content-Disposition"] = f'attachment; filename="badge-{credential_uuid}.png"'
    return response


# Open Badges 2.0 hosted documents


def _ob2(document: dict[str, Any], title: str) -> Response:
    if _wants_html():
        page = render_template_string(OB2_PAGE, title=title, document=document)
        response = Response(page, mimetype="text/html")
    else:
        response = _ld(document)
    response.headers["Vary"] = "Accept"
    return response


@bp.get("/ob/v2/issuers/<int:tenant_id>")
def ob2_issuer(tenant_id: int) -> Response:
    base = _base()
    with ctx().db.session() as session:
        name = _tenant(session, tenant_id).name
    url = f"{base}/ob/v2/issuers/{tenant_id}"
    return _ob2(documents.ob2_issuer(url, name, f"{base}/", f"{url}/revocations"), name)


@bp.get("/ob/v2/issuers/<int:tenant_id>/revocations")
def ob2_revocations(tenant_id: int) -> Response:
    base = _base()
    with ctx().db.session() as session:
        _tenant(session, tenant_id)
        rows = session.execute(
            select(IssuedCredential.uuid, PlayerBadge.revoked_reason)
            .join(PlayerBadge, PlayerBadge.id == IssuedCredential.award_id)
            .where(
                IssuedCredential.tenant_id == tenant_id,
                PlayerBadge.tenant_id == tenant_id,
                PlayerBadge.revoked_at.is_not(None),
            )
        ).all()
    url = f"{base}/ob/v2/issuers/{tenant_id}"
    revoked = {service.assertion_url(base, uid): reason or "revoked" for uid, reason in rows}
    return _ld(documents.ob2_revocation_list(f"{url}/revocations", url, revoked))


def _badge_class(session: Session, tenant_id: int, badge_id: str, tier: int) -> dict[str, Any]:
    award = session.scalar(
        select(PlayerBadge)
        .where(
            PlayerBadge.tenant_id == tenant_id,
            PlayerBadge.badge_id == badge_id,
            PlayerBadge.tier == tier,
        )
        .limit(1)
    )
    if award is None:
        raise NotFound(f"no badge {badge_id!r} tier {tier} has been awarded by issuer {tenant_id}")
    base = _base()
    tenant = _tenant(session, tenant_id)
    description = service.badge_description(session, tenant_id, badge_id)
    name, criteria = service.achievement_text(award, tenant, description)
    url = service.badge_class_url(base, tenant_id, badge_id, tier)
    return documents.ob2_badge_class(
        url,
        name,
        description or name,
        f"{url}/image.png",
        criteria,
        f"{base}/ob/v2/issuers/{tenant_id}",
    )


@bp.get("/ob/v2/badges/<int:tenant_id>/<badge_id>/<int:tier>")
def ob2_badge_class(tenant_id: int, badge_id: str, tier: int) -> Response:
    """The BadgeClass (OB 2.0); its URL is also the OB 3.0 achievement id."""
    with ctx().db.session() as session:
        document = _badge_class(session, tenant_id, badge_id, tier)
    return _ob2(document, document["name"])


@bp.get("/ob/v2/badges/<int:tenant_id>/<badge_id>/<int:tier>/image.png")
def badge_image(tenant_id: int, badge_id: str, tier: int) -> Response:
    with ctx().db.session() as session:
        _badge_class(session, tenant_id, badge_id, tier)
    return Response(badge_png(f"{tenant_id}/{badge_id}"), mimetype="image/png")


def _assertion(session: Session, row: IssuedCredential) -> dict[str, Any]:
    base = _base()
    award = session.get(PlayerBadge, row.award_id)
    if award is None:
        raise NotFound(f"no credential {row.uuid}")
    player = session.get(Player, award.player_id)
    if player is None:
        raise NotFound(f"no credential {row.uuid}")
    badge_url = service.badge_class_url(base, row.tenant_id, award.badge_id, award.tier)
    return documents.ob2_assertion(
        service.assertion_url(base, row.uuid),
        badge_url,
        service.recipient_for(player, row.salt, base),
        award.awarded_at,
        award.expires_at,
        award.explanation,
        f"{badge_url}/image.png",
        revoked_reason=(award.revoked_reason or "revoked") if award.revoked_at else None,
    )


@bp.get("/ob/v2/assertions/<credential_uuid>")
def ob2_assertion(credential_uuid: str) -> Response:
    """The hosted OB 2.0 Assertion of an issued credential (served, marked, when revoked)."""
    with ctx().db.session() as session:
        document = _assertion(session, _credential(session, credential_uuid))
    return _ob2(document, "Open Badges 2.0 assertion")


@bp.get("/ob/v2/assertions/<credential_uuid>.png")
def ob2_assertion_png(credential_uuid: str) -> Response:
    """The badge image baked the OB 2.0 way (keyword openbadges, the hosted assertion JSON)."""
    with ctx().db.session() as session:
        row = _credential(session, credential_uuid)
        document = _assertion(session, row)
        award = session.get(PlayerBadge, row.award_id)
        seed = f"{row.tenant_id}/{award.badge_id if award else ''}"
    png = bake(badge_png(seed), json.dumps(document, separators=(",", ":")), OB2_KEYWORD)
    return Response(png, mimetype="image/png")


# Verification


_ASSERTION_PATH = "/ob/v2/assertions/"
_COMPARED = ("id", "type", "badge", "recipient", "issuedOn", "expires", "verification")


def _verify_ob2(document: dict[str, Any] | str) -> VerificationResult:
    """Open Badges 2.0 hosted verification: the assertion at its ``id`` (ours: read from the
    database, never fetched) is the truth; a copy that differs from it is tampered."""
    fmt = "ob2-hosted"
    url = document if isinstance(document, str) else document.get("id")
    base = _base()
    if not isinstance(url, str) or not url.startswith(base + _ASSERTION_PATH):
        return VerificationResult(
            "unknown_issuer",
            "only Open Badges 2.0 assertions hosted by this Questline are checked here",
            fmt,
        )
    with ctx().db.session() as session:
        row = service.credential_by_uuid(session, url.removeprefix(base + _ASSERTION_PATH))
        if row is None:
            return VerificationResult("unknown_issuer", f"no hosted assertion at {url}", fmt)
        hosted = _assertion(session, row)
    details = {"id": url, "issued_on": hosted["issuedOn"], "expires": hosted.get("expires")}
    if isinstance(document, dict) and any(
        document.get(key) != hosted.get(key) for key in _COMPARED
    ):
        return VerificationResult(
            "tampered", "this copy differs from the assertion its issuer hosts", fmt, None, details
        )
    if hosted.get("revoked"):
        reason = hosted.get("revocationReason", "revoked")
        return VerificationResult(
            "revoked", f"the issuer has revoked this badge: {reason}", fmt, None, details
        )
    expires = hosted.get("expires")
    if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) <= datetime.now(UTC):
        return VerificationResult("expired", f"the badge expired on {expires}", fmt, None, details)
    return VerificationResult(
        "valid", "the hosted assertion matches and is in force", fmt, None, details
    )


def _is_ob2(parsed: Any) -> bool:
    return isinstance(parsed, dict) and (
        parsed.get("@context") == documents.OB_V2_CONTEXT or parsed.get("type") == "Assertion"
    )


def _verify(raw: str | bytes | dict[str, Any], recipient: str = "") -> VerificationResult:
    if isinstance(raw, str) and raw.strip().startswith(("http://", "https://")):
        return _verify_ob2(raw.strip())  # a 2.0 PNG may carry just the assertion URL
    try:
        parsed = parse_input(raw)
    except ValueError as exc:
        return VerificationResult("malformed", str(exc))
    if isinstance(parsed, dict) and _is_ob2(parsed):
        return _verify_ob2(parsed)
    with ctx().db.session() as session:
        base = _base()
        result = verify(
            raw,
            resolve_key=service.key_resolver(session, base),
            status_lookup=service.status_lookup(session, base),
        )
    if recipient.strip() and result.credential is not None:
        result.details["recipient_matches"] = recipient_matches(result.credential, recipient)
    return result


def _from_png(data: bytes) -> str:
    """The baked badge: 3.0 credential JSON or JWT, or a 2.0 assertion (JSON or its URL)."""
    return unbake(data)[1]


@bp.route("/ob/verify", methods=["GET", "POST"])
def verify_page() -> Any:
    """Paste or upload a credential (JSON, VC-JWT or baked PNG): valid, expired, revoked or why
    not. JSON in, JSON out (``POST`` with ``Content-Type: application/json``); else HTML."""
    if request.method == "GET":
        text = ""
        if request.args.get("id"):
            with ctx().db.session() as session:
                row = service.credential_by_uuid(session, request.args["id"])
                text = json.dumps(row.document, indent=2) if row is not None else ""
        result = _verify(text) if text else None
        return render_template_string(VERIFY_PAGE, result=result, text=text, recipient="")
    if request.is_json:
        # Parsed here rather than by request.get_json: a deeply nested body raises
        # RecursionError there, which would be a 500; parse_input turns it into a reason.
        try:
            body = parse_input(request.get_data())
        except ValueError as exc:
            raise Unprocessable(str(exc)) from exc
        if not isinstance(body, dict):
            raise Unprocessable("send the credential as a JSON object (or {'jwt': '...'})")
        raw: Any = body.get("jwt") if isinstance(body.get("jwt"), str) else body
        recipient = request.args.get("recipient", "")
        return jsonify(_verify(raw, recipient).as_json())
    upload = request.files.get("file")
    text = request.form.get("credential", "")
    if upload is not None and upload.filename:
        try:
            raw = _from_png(upload.read())
        except BakingError as exc:
            result = VerificationResult("malformed", str(exc))
            return render_template_string(VERIFY_PAGE, result=result, text="", recipient=""), 422
    else:
        raw = text
    result = _verify(raw, request.form.get("recipient", ""))
    status = 200 if result.status != "malformed" else 422
    recipient = request.form.get("recipient", "")
    page = render_template_string(VERIFY_PAGE, result=result, text=text, recipient=recipient)
    return page, status


VERIFY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Verify an Open Badge</title>
<style>body{font:16px system-ui;max-width:48rem;margin:2rem auto;padding:0 1rem}
textarea{width:100%;height:12rem;font:13px monospace}.r{padding:1rem;border-radius:.5rem}
.valid{background:#e7f7ea}.bad{background:#fdeaea}</style></head><body>
<h1>Verify an Open Badge</h1>
{% if result %}<section class="r {{ 'valid' if result.valid else 'bad' }}" id="result"
 data-status="{{ result.status }}"><h2>{{ result.status.replace('_', ' ') | capitalize }}</h2>
<p>{{ result.message }}</p>{% if result.details %}<dl>
{% for k, v in result.details.items() if v is not none %}<dt>{{ k.replace('_', ' ') }}</dt>
<dd>{{ ('yes' if v else 'NO') if v is sameas true or v is sameas false else v }}</dd>
{% endfor %}</dl>{% endif %}</section>{% endif %}
<form method="post" enctype="multipart/form-data">
<p><label for="credential">Credential (JSON or VC-JWT)</label></p>
<textarea id="credential" name="credential">{{ text }}</textarea>
<p><label>or a baked badge image (PNG)
<input type="file" name="file" accept="image/png"></label></p>
<p><label>Recipient's email (optional: checks the badge is theirs)
<input type="email" name="recipient" value="{{ recipient }}"></label></p>
<p><button type="submit">Verify</button></p></form></body></html>"""

OB2_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head><body>
<h1>{{ title }}</h1><p>Open Badges 2.0 ({{ document.type }})</p>
<pre>{{ document | tojson(indent=2) }}</pre></body></html>"""
