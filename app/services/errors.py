"""What a use case answers when a request cannot be done, without any HTTP in it.

``app/api/errors.py`` maps each class to its status code in one table; the message (or a
dict of details) is what the caller reads.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request that cannot be done; ``detail`` says why."""

    def __init__(self, detail: str | dict[str, Any]) -> None:
        super().__init__(detail if isinstance(detail, str) else detail.get("message", ""))
        self.detail = detail


class NotFound(DomainError):
    """The call, task, agent, queue or unit named does not exist."""


class Forbidden(DomainError):
    """The principal may not act on this resource (its role reaches it not)."""


class Conflict(DomainError):
    """The resource is not in a state that allows it (not answered, window closed, ...)."""


class Invalid(DomainError):
    """The request names something the configuration does not allow (a reason, a unit).
    ``loc``: where in the request (``("body", "reason")``, ``("query", "date")``); empty
    when it is the request as a whole."""

    def __init__(self, detail: str | dict[str, Any], loc: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.loc = loc


class Unavailable(DomainError):
    """A part the request needs is not there now (no PBX, the AMI link down, no work.yaml)."""


class PbxRefused(DomainError):
    """The PBX refused an action. ``about_state``: its reply is about the state (a member
    already there, ...), not a failure of the PBX."""

    def __init__(self, detail: dict[str, Any], about_state: bool) -> None:
        super().__init__(detail)
        self.about_state = about_state


class PbxUnconfirmed(DomainError):
    """The PBX did not confirm an action in time; only what it confirmed has changed."""
