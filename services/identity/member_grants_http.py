"""`POST /oauth/token` for member apps: `authorization_code` (with PKCE) and `refresh_token`;
and `POST /oauth/revoke` for them (RFC 7009 as a public client: a member app's "Sign out").

Written here rather than through Authlib's AuthorizationCodeGrant and RefreshTokenGrant: those
call back synchronously into `query_authorization_code`, `authenticate_refresh_token`,
`revoke_old_credential` and `save_token`, each of which is a database read or write that must
happen in one transaction with the others (consume the code atomically, rotate the refresh token
under a row lock, revoke the family on a replay and still answer an error). Preloading all of
that before Authlib runs, as the client-credentials adapter does, would mean doing the grant's
work before the grant; the two grants are short, and RFC 6749 sections 4.1.3 and 6 and RFC 7636
section 4.6 are followed step by step in `member_tokens`.

Member apps are public clients (token_endpoint_auth_method `none`): `client_id` in the form, no
secret. A secret or an HTTP Basic header is refused, so a confidential client's credentials
never reach this path by mistake.

Revocation by a public client (RFC 7009 section 2.1 lets the server accept the client's id
alone for public clients: "the authorization server [...] verifies whether the token was issued
to the client making the revocation request"): an app may revoke only tokens issued to it. A
refresh token takes its whole family with it (that sign-in's refresh and access tokens); an
access token only itself. Anything else (another app's token, garbage) is left alone and the
answer is the same 200, so the endpoint tells nothing; naming an unknown app is `invalid_client`
as everywhere. Knowing a token is what lets one revoke it, and whoever holds a member's token
could use it anyway: revoking it is the least harmful thing to do with it.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.identity import member_tokens, propagation
from services.identity import service as identity
from services.identity.keys import active_signing_key, ensure_signing_key
from services.identity.member_apps import load_member_app
from services.identity.oauth_forms import NO_STORE, _oauth_error

log = logging.getLogger("coalition.identity")

MEMBER_GRANTS = frozenset({"authorization_code", "refresh_token"})
REQUIRED = {
    "authorization_code": ("code", "code_verifier", "client_id", "redirect_uri"),
    "refresh_token": ("refresh_token", "client_id"),
}


async def member_token(request: Request, form: dict[str, str]) -> Response:
    grant = form.get("grant_type", "")
    if request.headers.get("authorization") or "client_secret" in form:
        return _oauth_error(
            "invalid_client",
            "member apps are public clients: send client_id in the form, and no secret",
            401,
        )
    missing = [name for name in REQUIRED[grant] if not form.get(name)]
    if missing:
        return _oauth_error("invalid_request", f"missing parameters: {', '.join(missing)}")
    db = request.app.state.db
    async with db.sessions() as session:
        client = await load_member_app(session, form["client_id"])
        if client is None:
            return _oauth_error("invalid_client", "client authentication failed", 401)
        key = await active_signing_key(session)
        if key is None:
            await ensure_signing_key(session)
            await session.commit()
            key = await active_signing_key(session)
        assert key is not None
        try:
            if grant == "authorization_code":
                answer, notices, error = await member_tokens.exchange_code(
                    session,
                    client,
                    code=form["code"],
                    code_verifier=form["code_verifier"],
                    redirect_uri=form["redirect_uri"],
                    key=key,
                )
            else:
                answer, notices, error = await member_tokens.refresh(
                    session, client, refresh_token=form["refresh_token"], scope=form.get("scope"), key=key
                )
            await session.commit()
        except Exception:
            log.exception("member token endpoint failed")
            return _oauth_error("server_error", "the token could not be issued; try again later", 500)
    for notice in notices:  # a replay revoked tokens: every gateway refuses them before we answer
        await propagation.applied_everywhere(db, notice)
    if error is not None:
        return _oauth_error(error.error, error.description, error.status)
    return JSONResponse(answer, headers=NO_STORE)


def is_public_revocation(request: Request, form: dict[str, str]) -> bool:
    """A revocation that names a client without authenticating it: a member app's (public)."""
    return (
        not request.headers.get("authorization")
        and "client_secret" not in form
        and bool(form.get("client_id"))
    )


async def member_revoke(request: Request, form: dict[str, str]) -> Response:
    """RFC 7009 for a public client: 200 whether or not there was anything of its own to revoke,
    answered once every gateway has applied what was revoked."""
    db = request.app.state.db
    async with db.sessions() as session:
        client = await load_member_app(session, form["client_id"])
        if client is None:  # the same bytes as a wrong secret: no oracle of client ids
            return _oauth_error("invalid_client", "client authentication failed", 401)
        if not form.get("token"):
            return _oauth_error("invalid_request", "the 'token' parameter is required")
        # Refresh tokens first (the hint is only a hint, section 2.1): one indexed lookup.
        notices = await member_tokens.revoke_refresh_token(session, client, form["token"])
        revocation = None
        if notices is None:
            revocation = await identity.revoke_token(session, form["token"], caller=client)
        await session.commit()
    if revocation is not None:
        request.app.state.verifier.revoked_locally(revocation.jti, revocation.expires_at)
        notices = [revocation.notice]
    for notice in notices or ():
        await propagation.applied_everywhere(db, notice)
    return Response(status_code=200, headers=NO_STORE)
