"""Calling a platform's LTI Advantage services (AGS, NRPS) outside a launch, from a job.

pylti1p3's service classes do the protocol (client-credentials token with a JWT assertion
signed by our current key, paging, media types); this builds them from our tables.
"""

from __future__ import annotations

from typing import Any

import requests
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import ServiceConnector
from sqlalchemy.orm import Session

from lti.keys import SigningKeyCache
from lti.models import LtiCourse, LtiRegistration
from lti.tool_config import QuestlineRegistration

TIMEOUT_SECONDS = 10
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


class TimeoutSession(requests.Session):
    """pylti1p3 calls ``post``/``get`` without a timeout; a stuck platform must not hang a job."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        return super().request(*args, **kwargs)


def connector(session: Session, course: LtiCourse, keys: SigningKeyCache) -> ServiceConnector:
    row = session.get(LtiRegistration, course.registration_id)
    assert row is not None
    key = keys.current(session)
    registration = QuestlineRegistration(row, lambda: (key.kid, key.private_pem))
    return ServiceConnector(registration, TimeoutSession())


def ags(service: ServiceConnector, course: LtiCourse) -> AssignmentsGradesService:
    return AssignmentsGradesService(
        service, {"scope": list(course.ags_scopes or []), "lineitems": course.ags_lineitems_url}
    )


def nrps(service: ServiceConnector, course: LtiCourse) -> NamesRolesProvisioningService:
    return NamesRolesProvisioningService(
        service, {"context_memberships_url": course.nrps_url, "service_versions": ["2.0"]}
    )
