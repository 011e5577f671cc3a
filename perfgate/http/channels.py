"""Server-side publish: ``POST /v1/channels/{channel}/messages`` → 202 ``{"offset"}``."""

from __future__ import annotations

from quart import Blueprint, Response, current_app, jsonify

from perfgate.errors import Unavailable
from perfgate.http.bodies import read_json
from perfgate.http.openapi import document
from perfgate.http.security import authenticate
from perfgate.http.services import Services
from perfgate.schema import PUBLISH_MESSAGE, PUBLISHED

OFFSET_SCHEMA = PUBLISHED

#: A channel name a client may publish to (perfgate.gateway.channels): no "/", which the URL
#: rule does not match inside a segment, and no "$" (reserved). ``jobs:*`` is 403.
CHANNEL_PARAM = {"type": "string", "pattern": r"^[A-Za-z0-9_.:@=+-]{1,128}$"}

blueprint = Blueprint("channels", __name__)


@blueprint.post("/v1/channels/<channel>/messages")
@document(
    "Publish a message to a channel",
    body=PUBLISH_MESSAGE,
    responses={202: OFFSET_SCHEMA, 403: None, 503: None},
    scope="publish",
    tags=["channels"],
    params={"channel": CHANNEL_PARAM},
)
async def publish(channel: str) -> Response:
    principal = authenticate()
    principal.require("publish")
    state = current_app.config["PERFGATE"]
    services: Services = state.services
    gateway = services.gateway
    if gateway is None or not state.readiness.accepting:
        raise Unavailable(f"not accepting messages ({state.readiness.reason()})")
    body = PUBLISH_MESSAGE.parse(await read_json())
    offset = await gateway.publish(
        channel, body["data"], priority=body["priority"], principal=principal
    )
    response = jsonify({"channel": channel, "offset": offset})
    response.status_code = 202
    response.headers["Cache-Control"] = "no-store"
    return response
