"""API keys: who may call the API routes, and who may reload the model.

With ``API_KEYS`` / ``API_KEYS_FILE`` set, every API route requires ``Authorization: Bearer
<key>`` or ``X-API-Key: <key>``; without them the API is open. Keys are compared in constant
time (every key, every time). The schemes are FastAPI's own security classes, so OpenAPI
declares them and ``/docs`` offers to fill them in. ``ADMIN_API_KEY`` guards
``POST /admin/reload``: no key or a wrong one is 401, a user's API key is 403.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="`X-API-Key: <API key>`"
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
HeaderKey = Annotated[str | None, Security(api_key_header)]


def matches(presented: str, keys: tuple[str, ...]) -> bool:
    """Whether ``presented`` is one of ``keys``, comparing with every key in constant time."""
    candidate = presented.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key.encode())
    return found


def presented_key(credentials: HTTPAuthorizationCredentials | None, header: str | None) -> str:
    if header:
        return header
    return credentials.credentials if credentials is not None else ""


async def require_api_key(
    request: Request, credentials: BearerCredentials, header: HeaderKey
) -> None:
    """401 unless the API is open or the request carries one of its keys."""
    keys: tuple[str, ...] = request.app.state.api_keys
    if not keys:
        return
    key = presented_key(credentials, header)
    if not key:
        raise HTTPException(
            status_code=401,
            detail="an API key is required: send `Authorization: Bearer <key>` or "
            "`X-API-Key: <key>`",
            headers=CHALLENGE,
        )
    if not matches(key, keys):
        raise HTTPException(status_code=401, detail="the API key is not valid", headers=CHALLENGE)


async def require_admin_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> None:
    """401 without the admin key, 403 for a user's API key."""
    admin: str = request.app.state.settings.admin_api_key.get_secret_value()
    key = credentials.credentials if credentials is not None else ""
    if key and matches(key, (admin,)):
        return
    if key and matches(key, request.app.state.api_keys):
        raise HTTPException(status_code=403, detail="this API key may not reload the model")
    raise HTTPException(
        status_code=401,
        detail="the admin key is required: send `Authorization: Bearer <ADMIN_API_KEY>`",
        headers=CHALLENGE,
    )


ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)
