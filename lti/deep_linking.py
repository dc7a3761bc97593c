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
WINDOWS = ("all_time", "month", "week")
SIZES = ("small", "medium", "large")


@dataclass(frozen=True)
class WidgetChoice:
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
