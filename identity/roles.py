"""Which LTI roles make someone staff of a course, read strictly from the LIS role vocabulary.

An LTI launch carries every role the platform knows for the person: context (course) roles such as
``http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor``, but also institution and system
roles such as ``http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor``, which
Canvas sends for a faculty member in every course, including the ones they take as a learner. Only
a *context* role may make someone an instructor of the launch's course, or a faculty member
enrolled as a student would see their classmates' data. Hence an exact parse, not a substring test.

Course staff are the context roles Instructor (and its sub-roles: TeachingAssistant, Grader,
...), Administrator (and sub-roles), ContentDeveloper (course designers, who add Questline by deep
linking) and TeachingAssistant. Accepted spellings (LTI 1.3 Core, appendix A.2.3):

- ``http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor`` (a context role);
- ``http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant`` (a sub-role,
  which belongs to its principal role ``Instructor``);
- the deprecated simple names ``Instructor``, ... and LTI 1.1's ``urn:lti:role:ims/lis/Instructor``
  (optionally ``/SubRole``), which LTI 1.3 says may still be recognised as context roles.
"""

from __future__ import annotations

from collections.abc import Iterable

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
LTI11_CONTEXT = "urn:lti:role:ims/lis/"
STAFF_ROLES = frozenset({"Instructor", "Administrator", "ContentDeveloper", "TeachingAssistant"})


def context_role(role: str) -> str | None:
    """The principal context role a role URI names (``Instructor`` for a TA sub-role), or None
    for an institution / system role or anything unrecognised."""
    role = role.strip()
    if role.startswith(MEMBERSHIP + "#"):
        return role.removeprefix(MEMBERSHIP + "#") or None
    if role.startswith(MEMBERSHIP + "/"):
        principal, sep, _sub = role.removeprefix(MEMBERSHIP + "/").partition("#")
        return principal if sep and principal else None
    if role.startswith(LTI11_CONTEXT):
        return role.removeprefix(LTI11_CONTEXT).split("/", 1)[0] or None
    if role and ":" not in role and "/" not in role and "#" not in role:
        return role  # a simple name is a context role by definition
    return None


def is_course_staff(roles: Iterable[object]) -> bool:
    """True when one of the roles is a staff role *in this context* (see the module docstring)."""
    return any(isinstance(r, str) and context_role(r) in STAFF_ROLES for r in roles)
