"""3Dmol.js, the report's 3D viewer: a pinned npm release, fetched once and verified.

The library is not committed and never loaded from a CDN when a report is opened: ``make
viewer-js`` (``python -m foldserve.pipeline.viewer_js``) downloads the npm package's tarball
from the registry, checks it against the integrity hash pinned here (the ``dist.integrity`` the
registry publishes, as in a package-lock), and keeps ``build/3Dmol-min.js`` beside this module
(git-ignored); the report inlines it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

from foldserve.errors import InputError
from foldserve.files import write_bytes

VERSION = "2.5.5"
INTEGRITY = (
    "sha512-"
    "kqNHouGqq3YfW58174tdERvm0XYTmP0tavQKOqIw1ouc2OJ7epkXEFrtEkVXV0clBZT2Ze2xHRC/qxX0u0qCdw=="
)
TARBALL = f"https://registry.npmjs.org/3dmol/-/3dmol-{VERSION}.tgz"
MEMBER = "package/build/3Dmol-min.js"
#: Where the fetched library lives; ``FOLDSERVE_VIEWER_JS`` points elsewhere.
DEFAULT_PATH = Path(__file__).with_name("vendor") / f"3Dmol-{VERSION}-min.js"
FETCH_COMMAND = "make viewer-js (or: python -m foldserve.pipeline.viewer_js)"


def path() -> Path:
    return Path(os.environ.get("FOLDSERVE_VIEWER_JS") or DEFAULT_PATH)


def load() -> str:
    """The library's source; a one-line error saying how to fetch it when it is missing."""
    location = path()
    if not location.is_file():
        raise InputError(
            f"the 3D viewer library (3Dmol.js {VERSION}) is not installed",
            where=str(location),
            fix=f"run `{FETCH_COMMAND}` once",
        )
    return location.read_text(encoding="utf-8")


def integrity(data: bytes) -> str:
    """The npm/SRI integrity string of ``data``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(destination: Path | None = None, *, timeout: float = 60.0) -> Path:
    """Download the pinned tarball, verify it, and install the minified library."""
    target = destination or path()
    with urllib.request.urlopen(TARBALL, timeout=timeout) as response:
        tarball = response.read()
    found = integrity(tarball)
    if found != INTEGRITY:
        raise RuntimeError(f"{TARBALL}: integrity {found} is not the pinned {INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            raise RuntimeError(f"{TARBALL} has no {MEMBER}")
        library = member.read()
    return write_bytes(target, library)


if __name__ == "__main__":
    if path().is_file():
        print(f"3Dmol.js {VERSION} already in {path()}")
    else:
        print(f"fetched and verified 3Dmol.js {VERSION} into {fetch()}", file=sys.stderr)
