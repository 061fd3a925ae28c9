"""Which media type a GraphQL response is sent as: content negotiation on `Accept`, as the
GraphQL-over-HTTP specification describes it.

Two types are offered. `application/graphql-response+json` (the spec's own) lets the status code
carry meaning: 400 and no `data` entry when the request never reached execution.
`application/json` is what every client got before, and keeps getting: 200 for every well-formed
request. A client gets the spec's type only by naming it; wildcards (`*/*`, `application/*`) and
a missing `Accept` get `application/json`, as the spec asks during its transition. An `Accept`
that allows neither is disregarded (the spec's alternative to 406): a client that worked before
keeps working.
"""

from __future__ import annotations

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def _ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, quality) pairs; a malformed quality counts as 0, so that range is ignored."""
    ranges = []
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        if not media_range:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((media_range.lower(), quality))
    return ranges


def _quality(offered: str, ranges: list[tuple[str, float]]) -> tuple[float, bool]:
    """The quality the client gives `offered`, from its most specific matching range (RFC 9110
    section 12.5.1), and whether that range names the type exactly."""
    kind = offered.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for media_range, quality in ranges:
        specificity = {offered: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range, -1)
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1], best[0] == 2


def negotiate(accept: str | None) -> str:
    """The media type to answer with (module docstring): the spec's type when the client names
    it and likes nothing better (at equal quality it beats plain JSON), else JSON."""
    if not accept or not accept.strip():
        return JSON
    ranges = _ranges(accept)
    graphql_quality, graphql_named = _quality(GRAPHQL_RESPONSE_JSON, ranges)
    json_quality, _ = _quality(JSON, ranges)
    if graphql_named and graphql_quality > 0 and graphql_quality >= json_quality:
        return GRAPHQL_RESPONSE_JSON
    return JSON
