"""Alertmanager's webhook body (version 4) as models; anything else is a ``PayloadError`` (400).

Alertmanager posts one notification per alert group: the group's status and a
list of alerts, each with its own status, labels, ``startsAt`` and
fingerprint. Only the fields the receiver reads are required; the rest is
kept as Alertmanager sent it.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tgk_deploy.errors import ExitCode, TgkError


class PayloadError(TgkError):
    """The body is not an Alertmanager webhook notification we can read (HTTP 400)."""

    exit_code = ExitCode.BAD_INPUT


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    fingerprint: str = ""

    def label(self, name: str) -> str | None:
        return self.labels.get(name)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "?")


class Notification(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str
    status: AlertStatus
    receiver: str = ""
    group_key: str = Field(default="", alias="groupKey")
    alerts: list[Alert]


def parse_notification(body: bytes) -> Notification:
    """The webhook body as a model; a PayloadError names what is wrong (never echoes the body)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise PayloadError(f"the body is not JSON: {error.msg} at character {error.pos}") from None
    if not isinstance(document, dict):
        raise PayloadError("the body is not a JSON object")
    if document.get("version") != "4":
        raise PayloadError(
            f"webhook payload version {document.get('version')!r}: only Alertmanager's version 4 is read"
        )
    try:
        return Notification.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PayloadError(f"{where}: {first['msg']}") from None
