"""``/wallboard``: the wall screen page (static HTML + JS, live through ``/v1/stream``).

No build step: one file, ``app/api/static/wallboard.html``. ``?queues=a,b`` shows only
those queues (a team's own wall).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["wallboard"])

PAGE = Path(__file__).parent / "static" / "wallboard.html"


@cache
def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


@router.get("/wallboard", response_class=HTMLResponse, summary="Wallboard for a wall screen")
async def wallboard() -> HTMLResponse:
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache"})
