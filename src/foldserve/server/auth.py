"""Who may use the endpoint: API keys, required everywhere but on a loopback address."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from fastapi import Request

from foldserve.errors import InputError, Unauthorized

#: The shortest API key ``foldserve serve`` accepts: shorter ones can be guessed.
MIN_KEY_LENGTH = 16


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def required_keys(host: str, api_keys: tuple[str, ...], no_auth: bool) -> tuple[str, ...]:
    """The keys to require; refuse to serve without keys anywhere but on loopback, or with a
    key short enough to guess (their characters are checked where they are read,
    :func:`foldserve.config.server_api_keys`)."""
    if no_auth:
        if not is_loopback(host):
            raise InputError(
                f"--no-auth on {host}, which other machines can reach",
                where="--no-auth",
                fix="use it only with --host 127.0.0.1, or set FOLDSERVE_API_KEY",
            )
        return ()
    if not api_keys:
        raise InputError(
            "no API key to protect the endpoint with",
            where="FOLDSERVE_API_KEY",
            fix="set FOLDSERVE_API_KEY (or api_keys under [serve] in "
            "~/.config/foldserve/config.toml); on 127.0.0.1 alone, --no-auth",
        )
    if any(len(key) < MIN_KEY_LENGTH for key in api_keys):
        raise InputError(
            f"an API key is shorter than {MIN_KEY_LENGTH} characters",
            where="FOLDSERVE_API_KEY or [serve] api_keys",
            fix="use a long random key, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        )
    return api_keys


def key_check(api_keys: tuple[str, ...]) -> Callable[[Request], None]:
    """A FastAPI dependency that refuses a request without one of ``api_keys`` (none: all pass)."""
    known = [key.encode() for key in api_keys]

    def authorise(request: Request) -> None:
        if not known:
            return
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        given = key.strip().encode() if scheme.lower() == "bearer" else b""
        # Compare with every key, in constant time, so timing tells nothing about any key.
        matched = False
        for candidate in known:
            matched |= hmac.compare_digest(given, candidate)
        if not matched:
            raise Unauthorized(
                "missing or wrong API key",
                where="Authorization",
                fix="send 'Authorization: Bearer <key>' with a key the server was given "
                "(FOLDSERVE_API_KEY or [serve] api_keys in its config file)",
            )

    return authorise
