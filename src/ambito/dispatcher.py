"""Route requests to the service that owns a path prefix, as nginx does in distributed mode.

Unlike werkzeug's DispatcherMiddleware the prefix is not moved into
SCRIPT_NAME: every app declares its full paths, so the same URLs work behind
nginx (which proxies without rewriting) and in the embedded process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

WSGIApp = Any

# The one table of which service owns which paths; deploy/nginx mirrors it.
SERVICE_PREFIXES: dict[str, tuple[str, ...]] = {
    "intake": ("/api/intake/", "/intake/"),
    "vouchers": ("/api/vouchers/", "/vouchers/"),
    "documents": ("/api/documents/", "/protocollo/"),
}


class PrefixDispatcher:
    def __init__(self, default: WSGIApp, mounts: dict[str, WSGIApp]) -> None:
        self.default = default
        self.routes = [(prefix, mounts[service]) for service, prefixes in SERVICE_PREFIXES.items()
                       for prefix in prefixes if service in mounts]

    def app_for(self, path: str) -> WSGIApp:
        for prefix, app in self.routes:
            if path.startswith(prefix) or path == prefix.rstrip("/"):
                return app
        return self.default

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app_for(environ.get("PATH_INFO", ""))(environ, start_response)
