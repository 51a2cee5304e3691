"""API keys (Bearer or X-API-Key, compared in constant time, never logged) and the per-client rate limit."""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import SecretStr

bearer_scheme = HTTPBearer(auto_error=False, description="an API key from UXCX_API_KEYS")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key from UXCX_API_KEYS")


class KeyChecker:
    """Holds the configured keys as digests; answers whether a presented key is one of them."""

    def __init__(self, keys: list[SecretStr]) -> None:
        self._digests = [hashlib.sha256(k.get_secret_value().encode()).digest() for k in keys]

    @property
    def configured(self) -> bool:
        """Whether any key is configured."""
        return bool(self._digests)

    def valid(self, presented: str) -> bool:
        """Compare against every key in constant time (no early exit that would time the match)."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = False
        for known in self._digests:
            found |= hmac.compare_digest(digest, known)
        return found


def key_from_headers(request: Request) -> str | None:
    """The key a request carries: `Authorization: Bearer <key>`, else `X-API-Key`."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return request.headers.get("x-api-key") or None


def check_key(checker: KeyChecker, key: str | None) -> None:
    """401 without a key, 403 with a wrong one; the key itself never appears in the answer."""
    if not checker.configured:
        raise HTTPException(403, "this endpoint needs an API key, and the service has none configured: set UXCX_API_KEYS")
    if key is None:
        raise HTTPException(
            401,
            "this endpoint needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not checker.valid(key):
        raise HTTPException(403, "the API key is not valid")


class RateLimiter:
    """Per-client moving-window limits, in process memory (each worker counts its own requests)."""

    def __init__(self, spec: str) -> None:
        self.items: list[RateLimitItem] = parse_many(spec) if spec else []
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> None:
        """Count one request from `client`; 429 with Retry-After when a limit is exceeded."""
        for item in self.items:
            if not self._limiter.hit(item, client):
                reset = self._limiter.get_window_stats(item, client).reset_time
                retry = max(1, int(reset - time.time()) + 1)
                raise HTTPException(
                    429,
                    f"too many requests: the limit is {item} per client (UXCX_RATE_LIMIT); retry in {retry} s",
                    headers={"Retry-After": str(retry)},
                )


def client_identity(request: Request, key: str | None) -> str:
    """Who is limited: the API key's digest when one is sent, else the client address."""
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    host = request.client.host if request.client else "unknown"
    return "ip:" + host
