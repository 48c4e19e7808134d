"""Types every router shares: bounded inputs, the errors every endpoint may answer.

Every string the API takes has a length cap and no control characters (PostgreSQL refuses
NUL in text, and nothing here needs them); every time is aware and within 1970-2100
(outside it Python cannot even convert it to UTC). Bad input is a 4xx with a JSON body
``{"detail": ...}`` saying what is wrong, and nothing changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field

from app.api.errors import ErrorOut

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _bounded(value: datetime) -> datetime:
    if not (EARLIEST <= value <= LATEST):
        raise ValueError("must be between 1970 and 2100")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_bounded)]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", max_length=40)]
QueueName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,40}$", max_length=41)]
AgentId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", max_length=64)]
Interface = Annotated[
    str, Field(pattern=r"^[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9._@+-]{1,100}$", max_length=128)
]
Team = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$", max_length=64)]
Name = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]+$", min_length=1, max_length=128)]
Note = Annotated[str, Field(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", max_length=500)]
CallId = Annotated[int, Field(ge=1, le=2**62)]
PATH_AGENT = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no, unknown, expired or revoked credentials"},
    403: {"model": ErrorOut, "description": "the role or the resource is not yours"},
}
