"""Every route of the portal requires an Airflow login - Airflow itself does not check plugin apps.

Airflow mounts plugin FastAPI apps with ``app.mount()`` and applies no authentication to them (that is
why Cosmos' dbt docs answer without a login). We reuse Airflow's own check rather than a user store
of ours: ``requires_authenticated()`` resolves the user through ``get_user`` (``Authorization: Bearer``
header, else the ``_token`` cookie the UI sets) and the configured auth manager. It is attached to the
whole sub-app, so a route added later cannot forget it.

Failures become 401 for JSON and assets, and a redirect to Airflow's login page for HTML pages
(routes tagged ``PAGE_TAG``) asked for by a browser.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lineage_portal import MOUNT

PAGE_TAG = "page"
AUTH_FAILURES = {401, 403}  # 403 = a token Airflow could not validate: to the user, "log in again"


def login_dependency() -> Any:
    """Airflow's ``requires_authenticated()`` dependency (imported late: it pulls in Airflow's models)."""
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def is_page_request(request: Request) -> bool:
    """A browser navigating to an HTML page (not a script, fetch() or API client)."""
    route = request.scope.get("route")
    tags = getattr(route, "tags", None) or []
    return request.method == "GET" and PAGE_TAG in tags and "text/html" in request.headers.get("accept", "")


def login_url(request: Request) -> str:
    """Airflow's login page, coming back to the page asked for (Airflow validates ``next`` itself)."""
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return str(get_auth_manager().get_url_login(next_url=str(request.url)))
    except Exception:  # no auth manager initialised (unit tests): Airflow's default login route
        from urllib.parse import urlencode

        return f"{_airflow_root(request)}/auth/login?{urlencode({'next': str(request.url)})}"


def _airflow_root(request: Request) -> str:
    """The Airflow base path (``[api] base_url`` path): this app's root_path minus its mount point."""
    return str(request.scope.get("root_path", "")).removesuffix(MOUNT)


async def auth_exception_handler(request: Request, exc: Exception) -> Response:
    """401/403 from the login dependency → redirect (pages) or a bare 401 (everything else)."""
    if not isinstance(exc, StarletteHTTPException) or exc.status_code not in AUTH_FAILURES:
        assert isinstance(exc, StarletteHTTPException)
        return await http_exception_handler(request, exc)
    if is_page_request(request):
        return RedirectResponse(login_url(request), status_code=303, headers={"Cache-Control": "no-store"})
    return JSONResponse(
        {"detail": "Not authenticated: log in to Airflow (Bearer token or the _token cookie)"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"},
    )
