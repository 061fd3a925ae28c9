"""The member's data export as a file download, behind the gateway's bearer token: the same
document as `exportMyData`, for a member who wants to keep it or take it elsewhere."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from services.ledger import member_data
from shared.access import Principal
from shared.errors import AccessError
from shared.http import error_response

EXPORT_PATH = "/account/export.json"


async def export_my_data(request: Request, principal: Principal) -> Response:
    """200 with the document as an attachment; 403 (GraphQL-shaped error) for any token that is
    not a live member's."""
    try:
        document = await member_data.export_my_data(request.app.state.db, principal)
    except AccessError as exc:
        return error_response(403, exc.code, str(exc))
    number = document["profile"]["memberNumber"]
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="coalition-member-{number}.json"',
            "Cache-Control": "no-store",
        },
    )
