"""The brain's `calendar` section: the owner's CalDAV calendar (its password named, never written)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from agent.brain.schema.fields import Model, check_webhook_url

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"must name an environment variable (A-Z, 0-9, _), got {value!r}")
    return value


class CalDav(Model):
    """The owner's CalDAV calendar: bookings are written to it, and the owner's own events in it block
    those times. The password is read from the environment variable named here, never from this file."""

    url: Annotated[str, AfterValidator(check_webhook_url)]  # the calendar collection, ending in /
    username: Annotated[str, Field(min_length=1)]
    password_env: Annotated[str, AfterValidator(_check_env_name)]

    @field_validator("url")
    @classmethod
    def _a_collection(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"


class Calendar(Model):
    caldav: CalDav | None = None
