"""Slack for the gate's alerts: ``dagster-slack``'s :class:`SlackResource` plus where to post and where the
Dagster UI is.

``base_url`` is the Slack Web API base the client talks to. Production leaves it at ``https://slack.com/api/``;
the embedded default (README "Alerts (Slack)": a Slack client pointed at a configurable base URL) points it at any
server that speaks the Web API wire protocol (the tests run one on 127.0.0.1). The token is a secret: give it
as ``dg.EnvVar("SLACK_BOT_TOKEN")`` so that it is resolved at run time and never written into definitions,
run config or logs (the Slack SDK redacts the ``Authorization`` header in its own debug log). The channel,
API base URL and UI URL are plain config; the definitions read them from ``$EVALGATE_SLACK_CHANNEL``,
``$EVALGATE_SLACK_BASE_URL`` and ``$EVALGATE_UI_URL``.
"""

from __future__ import annotations

import os

from dagster_slack import SlackResource
from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

SLACK_API = WebClient.BASE_URL
TOKEN_ENV = "SLACK_BOT_TOKEN"
CHANNEL_ENV = "EVALGATE_SLACK_CHANNEL"
BASE_URL_ENV = "EVALGATE_SLACK_BASE_URL"
UI_URL_ENV = "EVALGATE_UI_URL"
DEFAULT_CHANNEL = "#evalgate-alerts"
DEFAULT_UI_URL = "http://127.0.0.1:3000"


class SlackAlerts(SlackResource):
    """Posts the gate's alerts: a ``slack_sdk.WebClient`` on ``base_url``, the channel, and the Dagster UI's
    base URL that every message links into."""

    channel: str = Field(default=DEFAULT_CHANNEL, description="the channel (name or id) alerts are posted to")
    base_url: str = Field(
        default=SLACK_API,
        description="Slack Web API base URL; point it at a local server speaking the Web API to test offline",
    )
    dagster_ui_url: str = Field(
        default=DEFAULT_UI_URL, description="base URL of the Dagster UI, for the links to runs and checks"
    )
    timeout_s: int = Field(default=30, gt=0, description="per-request timeout of the Slack client")

    def get_client(self) -> WebClient:
        client = WebClient(token=self.token, base_url=self.base_url, timeout=self.timeout_s)
        # Slack answers 429 with Retry-After when a channel gets more than about one message a second
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
        return client

    def post(self, text: str) -> None:
        """Post one message; raises ``slack_sdk.errors.SlackApiError`` when Slack refuses it."""
        self.get_client().chat_postMessage(channel=self.channel, text=text, unfurl_links=False, mrkdwn=True)


def slack_token_configured() -> bool:
    """Whether a token is set: the alerts sensor runs by default only then (else it is stopped, not failing)."""
    return bool(os.environ.get(TOKEN_ENV))
