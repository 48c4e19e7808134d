"""``/wallboard``: the wall screen page (static HTML + JS, live through ``/v1/stream``).

No build step: one file, ``app/api/static/wallboard.html``. ``?queues=a,b`` shows only
those queues (a team's own wall), ``?pbx=pbx2`` one PBX of a centre with several.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from app.settings import PBX_ID

router = APIRouter(tags=["wallboard"])

PAGE = Path(__file__).parent / "static" / "wallboard.html"


@cache
def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


@router.get(
    "/wallboard",
    response_class=HTMLResponse,
    summary="Wallboard for a wall screen",
    operation_id="getWallboard",
)
async def wallboard(
    queues: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="Show only these queues (comma-separated): a team's own wall. Read "
            "by the page itself.",
        ),
    ] = None,
    pbx: Annotated[
        str | None,
        Query(
            max_length=32,
            pattern=f"^{PBX_ID.pattern}$",
            description="Show one PBX of the centre (a name of ACD_PBXS) instead of the whole "
            "centre. Read by the page itself.",
        ),
    ] = None,
) -> HTMLResponse:
    """The wall screen's page (HTML). It reads the live picture through `/v1/stream` with an
    API key given in the address's fragment (`#key=...`), so the key never reaches a server
    log; `?queues=a,b` shows only those queues."""
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache"})
