"""File and .zip responses of a package, shared by the API and the inbox pages."""

from __future__ import annotations

import tempfile

from ambito_common.errors import NotFound
from flask import Response, send_file

from .models import Package
from .services import write_zip, zip_name
from .storage import PackageStore

# Packages stay under the PEC limit (30 MB); build small ones in memory, spill big ones to disk.
_ZIP_IN_MEMORY = 8 * 1024 * 1024


def file_response(store: PackageStore, package: Package, name: str) -> Response:
    """One file of the package, streamed from the store as a download."""
    file = package.file_named(name)
    if file is None:
        raise NotFound("File non trovato nel pacchetto.")
    return send_file(store.path(package.id, file.name), mimetype=file.media_type,
                     as_attachment=True, download_name=file.name, conditional=True,
                     etag=file.sha256)


def zip_response(store: PackageStore, package: Package) -> Response:
    """The whole package as one .zip download, named after its primary document."""
    # Not a with-block: the response streams the buffer and closes it when sent.
    buffer = tempfile.SpooledTemporaryFile(max_size=_ZIP_IN_MEMORY)  # noqa: SIM115
    write_zip(store, package, buffer)
    buffer.seek(0)
    return send_file(buffer, mimetype="application/zip", as_attachment=True,
                     download_name=zip_name(package))
