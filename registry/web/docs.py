"""`/docs` and `/docs/swagger`: Swagger UI from the copy Studbook serves itself.

Litestar's stock render plugins load their scripts from a CDN and start them with an inline
script, so the pages are blank offline and cannot run under a `'self'` Content-Security-Policy.
This plugin writes a page with no inline code: the vendored bundle (`vendor/swagger-ui`, see
`vendor/update.sh`) and a small start script read the schema from `/docs/openapi.json`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

STATIC = "/static"

DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class LocalSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI served from the package, under a `'self'` Content-Security-Policy."""

    def __init__(self, path: str | list[str] = "/swagger", **kwargs: Any) -> None:
        super().__init__(
            path=path,
            favicon=f'<link rel="icon" href="{STATIC}/favicon.svg" type="image/svg+xml">',
            style="",
            **kwargs,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema.get("info", {}).get("title", "API"))
        schema_url = self.get_openapi_json_route(request)
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_escape(title)} API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{self.favicon}
<link rel="stylesheet" href="/vendor/swagger-ui/swagger-ui.css">
<script src="/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/vendor/swagger-ui/swagger-ui-standalone-preset.js"></script>
<script src="{STATIC}/docs.js" defer></script>
</head>
<body>
<div id="swagger-container" data-schema-url="{_escape(schema_url)}"></div>
</body>
</html>
""".encode()


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
