"""The server: clipkit's Streamlit app plus the one route that sets its session cookie.

    streamlit run app_server.py --server.address 127.0.0.1 --browser.gatherUsageStats false

``streamlit_app.py`` is the app (a login gate and a router); this file adds
``/_clipkit/session`` (see ``app_pages/_session.py``), which a Streamlit
script cannot provide because it cannot set HTTP headers.
"""

from __future__ import annotations

import streamlit as st
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app_pages import _session


async def session_cookie(request: Request) -> PlainTextResponse:
    body = await request.body()
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    status, cookie, message = _session.reply(
        body, origin=request.headers.get("origin"), host=request.headers.get("host"),
        secure=request.url.scheme == "https" or forwarded == "https")
    response = PlainTextResponse(message, status_code=status, headers={"Cache-Control": "no-store"})
    if cookie is not None:
        response.headers.append("Set-Cookie", cookie)
    return response


app = st.App("streamlit_app.py", routes=[Route(_session.ROUTE, session_cookie, methods=["POST"])])
