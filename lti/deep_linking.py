"""Deep Linking 2.0: the instructor picks a widget and its options; Questline answers with a
signed LtiDeepLinkingResponse carrying one ltiResourceLink whose custom parameters hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource

from lti.errors import LtiRejected
from lti.tool_config import QuestlineRegistration

DL_SETTINGS_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
WIDGETS = {
    "leaderboard": "Leaderboard",
    "badges": "Badge shelf",
    "level": "Level bar",
    "streak": "Streak",
    "quests": "Quests",
}
DEFAULT_WIDGET = "level"
WINDOWS = ("all_time", "month", "week")
SIZES = ("small", "medium", "large")


@dataclass(frozen=True)
class WidgetChoice:
    """A widget and its options: what the instructor picks in deep linking, what the created
    link carries as custom parameters, and what a learner's launch of that link shows.
    ``views.widget_for_launch`` is the seam the widgets issue renders through."""

    widget: str
    window: str
    anonymise: bool
    size: str

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> WidgetChoice:
        widget = form.get("widget", "")
        window = form.get("window", "all_time")
        size = form.get("size", "medium")
        if widget not in WIDGETS:
            raise LtiRejected("invalid_choice", f"widget must be one of {', '.join(WIDGETS)}")
        if window not in WINDOWS:
            raise LtiRejected("invalid_choice", f"window must be one of {', '.join(WINDOWS)}")
        if size not in SIZES:
            raise LtiRejected("invalid_choice", f"size must be one of {', '.join(SIZES)}")
        return cls(widget, window, form.get("anonymise") in {"1", "on", "true"}, size)

    @classmethod
    def from_launch(cls, custom: object) -> WidgetChoice:
        """The widget a learner's launch asks for, from the link's custom parameters. Lenient:
        a link made by hand in the LMS (or before a widget existed) shows the level bar with
        default options instead of refusing a learner who can do nothing about it."""
        params = custom if isinstance(custom, Mapping) else {}
        widget = str(params.get("widget", ""))
        window = str(params.get("window", ""))
        size = str(params.get("size", ""))
        return cls(
            widget if widget in WIDGETS else DEFAULT_WIDGET,
            window if window in WINDOWS else "all_time",
            str(params.get("anonymise", "")).lower() in {"1", "on", "true"},
            size if size in SIZES else "medium",
        )

    @property
    def title(self) -> str:
        return WIDGETS[self.widget]

    def custom(self) -> dict[str, str]:
        """Custom parameters come back as strings in every launch of the created link."""
        return {
            "widget": self.widget,
            "window": self.window,
            "anonymise": "true" if self.anonymise else "false",
            "size": self.size,
        }


def response_jwt(
    registration: QuestlineRegistration,
    deployment_id: str,
    settings: Mapping[str, object],
    choice: WidgetChoice,
    launch_url: str,
) -> str:
    """The signed response JWT (pylti1p3 signs with the tool's current key and its kid); the
    page posts it to ``settings["deep_link_return_url"]``, echoing the request's ``data``."""
    if not settings.get("deep_link_return_url"):
        raise LtiRejected("invalid_message", "the deep linking request has no return URL")
    resource = (
        DeepLinkResource()
        .set_url(launch_url)
        .set_title(f"Questline: {WIDGETS[choice.widget]}")
        .set_custom_params(choice.custom())
    )
    return str(DeepLink(registration, deployment_id, dict(settings)).get_response_jwt([resource]))
