"""Files over plain HTTP, behind the gateway's bearer token: a run's statements as CSV or JSON
(the admin download URL), and a partner's reconciliation file.

A file is what an accounts team feeds its own systems or exports from its till; GraphQL is the
wrong shape for both, and its request limit (1 MiB) is far below a big partner's month. The same
access rules apply as for `settlementRun` and `submitReconciliation`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.settlement import queries, reconciliation
from services.settlement.export import FORMATS, reconciliation_summary, render
from shared.access import Principal
from shared.error_codes import UserErrorCode
from shared.errors import AccessError, DomainError, UserError
from shared.http import error_response
from shared.ids import require_global_id
from shared.parsing import in_bigint
from shared.settings import get_settings

EXPORT_PATH = "/settlement/runs/{run_id:int}/export.{fmt}"
UPLOAD_PATH = "/settlement/runs/{run_id:int}/reconciliation"
MAX_UPLOAD_BYTES = 32 * 1024 * 1024  # ~500,000 rows; parsed whole before anything is written


def export_url(run_id: int, fmt: str) -> str:
    return f"{get_settings().issuer}/settlement/runs/{run_id}/export.{fmt}"


async def export(request: Request, principal: Principal) -> Response:
    fmt = request.path_params["fmt"]
    if fmt not in FORMATS:
        return error_response(404, "NOT_FOUND", f"format must be one of {', '.join(FORMATS)}")
    run_id = request.path_params["run_id"]
    if not in_bigint(run_id):  # the path's digits are any length; ids are BIGINT
        return error_response(404, "NOT_FOUND", "no such settlement run")
    try:
        run = await queries.get_run(request.app.state.db, principal, run_id)
    except AccessError as exc:
        return error_response(403, exc.code, str(exc))
    if run is None:
        return error_response(404, "NOT_FOUND", "no such settlement run")
    media = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    name = f"settlement-run-{run.id}-{run.status.lower()}.{fmt}"
    return Response(
        render(run, fmt),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


async def upload_reconciliation(request: Request, principal: Principal) -> Response:
    """POST the CSV as the body (`?partnerId=` for an admin): the same matching as
    `submitReconciliation`; 200 with the summary and the first disputes, 400 with userErrors.

    Who may upload for which partner is decided before the body is read: a caller without the
    scope never makes the gateway take in up to `MAX_UPLOAD_BYTES` (the gateway's `BodyLimit`
    bounds the read itself, whatever the framing)."""
    partner = request.query_params.get("partnerId")
    run_id = request.path_params["run_id"]
    try:
        partner_id = require_global_id(partner, "Partner", "partnerId") if partner else None
        reconciliation.reconciling_partner(principal, partner_id)  # refuses before the read
    except AccessError as exc:
        return error_response(403, exc.code, str(exc))
    except DomainError as exc:
        return _user_errors(exc.errors)
    if not in_bigint(run_id):
        return error_response(404, "NOT_FOUND", "no such settlement run")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        return _user_errors([UserError(UserErrorCode.INVALID_ENCODING, "csv", "the file must be UTF-8")])
    try:
        db = request.app.state.db
        rec = await reconciliation.submit_reconciliation(
            db, principal, run_id=run_id, partner_id=partner_id, csv_text=text
        )
        disputes = await reconciliation.items(
            db, principal, rec, status=None, disputes_only=True, first=100, after=None
        )
    except AccessError as exc:
        return error_response(403, exc.code, str(exc))
    except DomainError as exc:
        return _user_errors(exc.errors)
    return JSONResponse(reconciliation_summary(rec, [item for _, item in disputes.items]))


def _user_errors(errors: list[UserError]) -> JSONResponse:
    return JSONResponse({"userErrors": [e.as_dict() for e in errors]}, status_code=400)
