"""The GraphQL endpoint: Strawberry's ASGI view, speaking GraphQL over HTTP as the spec (and
graphql-http's server audit) describes it.

What the view adds to Strawberry's:
- the response's media type is negotiated (`services.gateway.media`);
- a request that is not a well-formed GraphQL-over-HTTP request (a body that is not JSON, not a
  JSON object, a `query` that is not a string, `variables` or `extensions` that are not objects,
  an `operationName` that is not a string, another Content-Type) gets 400 with a GraphQL-shaped
  error naming the problem, whatever the media type; a mutation over GET gets 405;
- for `application/graphql-response+json`, a request that never reached execution (the document
  does not parse or validate, a variable does not coerce, the named operation is not there) gets
  400 and no `data` entry; `application/json` keeps 200 with `errors` and `"data": null`;
- every status code of a GraphQL result is decided in one overridable method, `status_code`.

Authentication and the body limit are in front of the view (`guard.RequireToken`,
`shared.http.BodyLimit`); error masking and the parser/validation caches are schema extensions
(`services.gateway.schema`), untouched here.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from services.gateway import sockets
from services.gateway.graphql_errors import complete
from services.gateway.guard import principal_of
from services.gateway.media import GRAPHQL_RESPONSE_JSON, JSON, negotiate
from services.gateway.sockets import CoalitionTransportWSHandler
from shared.graphql_error_codes import GraphQLErrorCode
from shared.graphql_types import Context
from shared.http import error_body

MEDIA_TYPE_KEY = "coalition.graphql_media_type"
log = logging.getLogger("coalition.gateway")


class RequestError(Exception):
    """The HTTP request is not a GraphQL request we can run: answered with `status` and a
    GraphQL-shaped error, before anything executes."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        code: str = "BAD_REQUEST",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers


def execution_started(result: ExecutionResult) -> bool:
    """Whether the operation began executing. Before execution (parsing, validation, the
    gateway's limits, variable coercion, choosing the operation) graphql-core produces no `data`
    and errors without a `path`; once it runs, `data` is an object, or null because a non-null
    field failed, and that failure has a path."""
    return result.data is not None or any(error.path is not None for error in result.errors or ())


def _kind(value: object) -> str:
    """How a JSON value is named in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def request_data(params: Any) -> GraphQLRequestData:
    """The four GraphQL-over-HTTP parameters from a decoded body (or GET parameters whose
    `variables` and `extensions` were decoded already), each checked for its JSON type."""
    if not isinstance(params, dict):
        batch = isinstance(params, list)
        hint = " (batched operations are not supported: send one per request)" if batch else ""
        raise RequestError(
            f'the request body must be a JSON object like {{"query": "..."}}; got {_kind(params)}{hint}'
        )
    query = params.get("query")
    if query is None:
        raise RequestError("the request has no `query`: send the GraphQL document as a string in `query`")
    if not isinstance(query, str):
        raise RequestError(f"`query` must be a string holding the GraphQL document; got {_kind(query)}")
    operation_name = params.get("operationName")
    if not isinstance(operation_name, str | None):
        raise RequestError(f"`operationName` must be a string or null; got {_kind(operation_name)}")
    for name in ("variables", "extensions"):
        if not isinstance(params.get(name), dict | None):
            raise RequestError(f"`{name}` must be an object or null; got {_kind(params[name])}")
    return GraphQLRequestData(
        query=query,
        variables=params.get("variables"),
        operation_name=operation_name,
        extensions=params.get("extensions"),
    )


def _decode_json(text: str | bytes, what: str) -> object:
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError as exc:
        raise RequestError(f"{what} must be UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise RequestError(f"{what} is not valid JSON: {exc}") from exc


_PLAIN_JSON = {JSON: (JSON, {}), f"{JSON}; charset=utf-8": (JSON, {"charset": "utf-8"})}


def _content_type(header: str) -> tuple[str, dict[str, str]]:
    """The media type and its parameters; the two spellings nearly every client sends without
    the email-header parser Strawberry uses (a few percent of a small request)."""
    known = _PLAIN_JSON.get(header.lower())
    return known if known is not None else parse_content_type(header)


class CoalitionGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = CoalitionTransportWSHandler

    def __init__(self, schema: BaseSchema, **kwargs: Any) -> None:
        kwargs.setdefault("subscription_protocols", (GRAPHQL_TRANSPORT_WS_PROTOCOL,))
        kwargs.setdefault("connection_init_wait_timeout", timedelta(seconds=10))
        kwargs.setdefault("max_subscriptions_per_connection", sockets.MAX_SUBSCRIPTIONS_PER_SOCKET)
        super().__init__(schema, **kwargs)
        self.sockets = sockets.SocketCounts()

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticates a socket at connection_init (`sockets.authenticate`) and takes its slot;
        refusals close it with their own code (`sockets.SocketRefused`)."""
        assert isinstance(context, sockets.SocketContext)
        await sockets.authenticate(context)
        context.slot = self.sockets.claim(context.principal)
        return UNSET

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        media_type = negotiate(request.headers.get("accept"))
        scope[MEDIA_TYPE_KEY] = media_type
        try:
            response = await self.run(request)
        except ClientDisconnect:  # gone before its body arrived: nobody to answer, nothing ran
            log.info("client disconnected before sending the whole request body")
            return
        except RequestError as exc:
            response = self.error_response(exc.status, exc.code, str(exc), media_type, exc.headers)
        except HTTPException as exc:  # what Strawberry itself refuses: a method other than GET, POST
            code = "METHOD_NOT_ALLOWED" if exc.status_code == 405 else "BAD_REQUEST"
            headers = {"Allow": "GET, POST"} if exc.status_code == 405 else None
            response = self.error_response(exc.status_code, code, exc.reason, media_type, headers)
        await response(scope, receive, send)

    def error_response(
        self, status: int, code: str, message: str, media_type: str, headers: dict[str, str] | None = None
    ) -> Response:
        body = error_body(code, message)
        return JSONResponse(body, status_code=status, media_type=media_type, headers=headers)

    def status_code(self, result: ExecutionResult, media_type: str) -> int:
        """The HTTP status of a GraphQL result: the one place that decides it (override to add a
        rule). `application/json` answers 200 for every well-formed request; the spec's type
        answers 400 when execution never started."""
        if media_type == GRAPHQL_RESPONSE_JSON and not execution_started(result):
            return 400
        return 200

    async def get_context(self, request: Any, response: Any = None) -> Context:
        state = request.app.state
        if request.scope["type"] == "websocket":  # authenticated at connection_init
            return sockets.SocketContext(
                principal=sockets.NOBODY,
                db=state.db,
                balance_feed=state.balance_feed,
                websocket=request,
                verifier=state.verifier,
                header_authorization=request.headers.get("authorization"),
            )
        return Context(principal=principal_of(request), db=state.db)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return False  # no IDE: a GET without a query is a bad request, not a page

    async def get_sub_response(self, request: Request) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = request.scope[MEDIA_TYPE_KEY]
        return sub_response

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        if request.method == "GET":
            params: dict[str, object] = dict(request.query_params)
            for name in ("variables", "extensions"):
                if params.get(name):
                    params[name] = _decode_json(str(params[name]), f"the `{name}` parameter")
                else:
                    params.pop(name, None)
            return request_data(params)
        if not request.content_type:
            raise RequestError("Content-Type must be application/json; none was given")
        content_type, options = _content_type(request.content_type)
        if content_type != JSON:
            raise RequestError(f"Content-Type must be application/json; got {content_type}")
        charset = options.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise RequestError(f"the request body must be UTF-8; Content-Type says {charset}")
        body = await request.get_body()
        if not body.strip():
            raise RequestError('the request has no body: POST a JSON object like {"query": "..."}')
        return request_data(_decode_json(body, "the request body"))

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        method = request_adapter.method
        try:
            result = await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=OperationType.from_http(method),
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:  # a mutation over GET: GET must stay safe
            raise RequestError(
                exc.as_http_error_reason(method), 405, "METHOD_NOT_ALLOWED", {"Allow": "POST"}
            ) from exc
        except CannotGetOperationTypeError as exc:  # a request error like a validation failure
            error = GraphQLError(
                exc.as_http_error_reason(), extensions={"code": GraphQLErrorCode.BAD_REQUEST.value}
            )
            result = ExecutionResult(data=None, errors=[error])
        except MissingQueryError as exc:
            raise RequestError("`query` is empty: send the GraphQL document as a string") from exc
        sub_response.status_code = self.status_code(result, request.scope[MEDIA_TYPE_KEY])
        return result

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        complete(result.errors or ())  # done by the schema already, except where it never ran
        body = await super().process_result(request, result)
        if request.scope[MEDIA_TYPE_KEY] == GRAPHQL_RESPONSE_JSON and not execution_started(result):
            body.pop("data", None)  # the spec: no `data` entry when execution never started
        return body

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = sub_response.media_type or JSON
        return response
