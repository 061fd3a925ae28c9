"""The admin download URL of a run's statements (CSV or JSON), behind the gateway's bearer token.

A file download is what an accounts team feeds its own systems; GraphQL is the wrong shape for
it. The same access rules apply as for `settlementRun`: admins get the whole run, a partner with
`settlement:read` its own statement only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.settlement import service
from services.settlement.export import FORMATS, render
from shared.access import Principal
from shared.errors import AccessError
from shared.settings import get_settings

EXPORT_PATH = "/settlement/runs/{run_id:int}/export.{fmt}"


def export_url(run_id: int, fmt: str) -> str:
    return f"{get_settings().issuer}/settlement/runs/{run_id}/export.{fmt}"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


async def export(request: Request, principal: Principal) -> Response:
    fmt = request.path_params["fmt"]
    if fmt not in FORMATS:
        return _error(404, "NOT_FOUND", f"format must be one of {', '.join(FORMATS)}")
    try:
        run = await service.get_run(request.app.state.db, principal, request.path_params["run_id"])
    except AccessError as exc:
        return _error(403, exc.code, str(exc))
    if run is None:
        return _error(404, "NOT_FOUND", "no such settlement run")
    media = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    name = f"settlement-run-{run.id}-{run.status.lower()}.{fmt}"
    return Response(
        render(run, fmt),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
