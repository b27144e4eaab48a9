"""``/docs``: Swagger UI served from the installed ``swagger-ui-py`` package's files, not from a CDN.

The page loads only this service's own URLs: a browser that opens it fetches
nothing from another host (no third-party script runs beside the admin token
a user may paste into it), and it works on a machine without internet access.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS = "/docs"
ASSETS = "/docs/assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
_PACKAGE = "swagger_ui"  # swagger-ui-py: Swagger UI's dist files in swagger_ui/static


def swagger_assets() -> Path:
    """The folder of Swagger UI's JavaScript and CSS in the installed package (located, not imported)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: pip install -r requirements.txt")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"{folder}: swagger-ui-bundle.js not found in the installed swagger-ui-py")
    return folder


def install_docs(app: FastAPI) -> None:
    """``/docs``, its OAuth2 redirect page and ``/docs/assets/*`` (Swagger UI's files) on ``app``,
    which must be built with ``docs_url=None`` and ``redoc_url=None`` (FastAPI's pages load a CDN)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_assets()), name="swagger-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
            # no validator badge: Swagger UI would send the document to its public validator
            swagger_ui_parameters={"validatorUrl": None},
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route(DOCS, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT, oauth2_redirect, methods=["GET"], include_in_schema=False)
