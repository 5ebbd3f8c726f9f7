"""``POST /admin/reload``: serve the checkpoint at ``MODEL_PATH`` anew (with ``ADMIN_API_KEY``).

One worker (``WORKERS=1``): the model is loaded, validated, warmed up and swapped in here,
and the answer says it is served. Several workers under ``python -m service``: the file is
checked here first; then the supervisor is sent SIGHUP, which has every worker reload in
place (:class:`service.__main__.Supervisor`), so the answer says the reload is under way.
A file that fails any check is answered 422 naming the problem, and nothing changes.
"""

from __future__ import annotations

import os
import signal

import anyio
from fastapi import APIRouter

from service.deps import LiveModelDep, SettingsDep
from service.errors import error_responses
from service.live import load_checked
from service.schemas import ReloadResult
from service.security import AdminKey

router = APIRouter(tags=["admin"], dependencies=[AdminKey])


@router.post(
    "/admin/reload",
    response_model=ReloadResult,
    responses=error_responses(401, 403, 422, 503),
    summary="Reload the checkpoint at MODEL_PATH without stopping (admin key)",
)
async def reload(live: LiveModelDep, settings: SettingsDep) -> ReloadResult:
    if settings.workers == 1:
        info = await live.reload()
        return ReloadResult(status="reloaded", sha256=info.sha256, workers=1)
    _, info = await anyio.to_thread.run_sync(load_checked, settings)
    os.kill(os.getppid(), signal.SIGHUP)  # the supervisor: every worker reloads in place
    return ReloadResult(status="reloading", sha256=info.sha256, workers=settings.workers)
