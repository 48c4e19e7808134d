"""The one owner of "now": the PBX's clock.

The calls, visits and agent states are stamped with the PBX's time (the AMI
``Timestamp`` headers), so every business decision about them is taken on that clock
too: opening hours and the 09-10 rule in the menu, the best contact hours of a transfer,
"today" of the live figures and of an agent's scorecard, the due day of a call-back, the
registration window after a call. The runtime holds one ``PbxClock`` and hands it to the
pipeline (which keeps it set), the FastAGI server, the live hub, the dialer and the API;
no other module reads the host's clock for business time.

``now()`` is the host's clock plus the skew the newest event showed (PBX time minus the
time we received it); on a real box the two differ by NTP's error, in the demo and the
simulations by days. ``wall()`` is the host's clock itself, for what is not about calls:
when a frame was received, when a row was written, when a credential expires.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def host_now() -> datetime:
    """The host's clock (UTC): ``PbxClock``'s source, and what ``wall()`` answers."""
    return datetime.now(UTC)


class PbxClock:
    """The PBX's time now (module doc). Callable: ``clock()`` is ``clock.now()``."""

    def __init__(self, tz: ZoneInfo | None = None, host: Callable[[], datetime] = host_now) -> None:
        self.tz = tz or ZoneInfo("UTC")
        self.host = host
        self.skew = timedelta(0)

    def now(self) -> datetime:
        return self.host() + self.skew

    __call__ = now

    def wall(self) -> datetime:
        return self.host()

    def observe(self, pbx_at: datetime, received_at: datetime) -> None:
        """An event stamped ``pbx_at`` by the PBX arrived at ``received_at`` (our clock)."""
        self.skew = pbx_at - received_at

    def today(self) -> date:
        """The local day (the centre's time zone) on the PBX's clock."""
        return self.now().astimezone(self.tz).date()
