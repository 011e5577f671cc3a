"""``/asyncapi.json`` describes the WebSocket protocol exactly: each documented example, sent
to a live gateway, is answered with the frames its operation declares, and every frame the
gateway sends validates against exactly one documented server message."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema

from tests.gateway.wsclient import Client

SERVER_MESSAGES = ["Welcome", "Ack", "Error", "Message", "Batch"]


def resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for key in ref.removeprefix("#/").split("/"):
        node = node[key]
    return node


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in all_refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in all_refs(value)]
    return []


class Frames:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        schemas = doc["components"]["schemas"]
        self.validators = {name: jsonschema.Draft202012Validator(schemas[name]) for name in schemas}

    def kind(self, frame: dict[str, Any]) -> str:
        """The one server message ``frame`` is (fails if none or several)."""
        matching = [n for n in SERVER_MESSAGES if self.validators[n].is_valid(frame)]
        assert len(matching) == 1, (frame, matching)
        return matching[0]

    def replies(self, operation: str) -> set[str]:
        reply = self.doc["operations"][operation]["reply"]["messages"]
        return {ref["$ref"].rsplit("/", 1)[-1] for ref in reply}


async def test_the_document_is_asyncapi_3_and_every_reference_resolves(service: Any) -> None:
    async with httpx.AsyncClient(base_url=service.http) as http:
        doc = (await http.get("/asyncapi.json")).json()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["gateway"]["host"] == service.ws.removeprefix("ws://").split("/")[0]
    assert doc["channels"]["gateway"]["address"] == "/ws"
    for ref in all_refs(doc):
        resolve(doc, ref)
    for operation in doc["operations"].values():
        assert operation["action"] in ("send", "receive")
    # Examples are valid against their own payloads.
    for message in doc["components"]["messages"].values():
        for example in message.get("examples", []):
            jsonschema.Draft202012Validator(resolve(doc, message["payload"]["$ref"])).validate(
                example["payload"]
            )


async def test_the_live_gateway_speaks_what_the_document_says(service: Any) -> None:
    async with httpx.AsyncClient(base_url=service.http) as http:
        doc = (await http.get("/asyncapi.json")).json()
        job = (await http.post("/v1/jobs", json={"task": "echo"})).json()
        await http.get(f"/v1/jobs/{job['id']}?wait=10")
    frames = Frames(doc)
    ws = await Client.connect(service.ws)
    assert frames.kind(await ws.recv()) == "Welcome"
    seen: set[str] = set()
    for name, message in doc["components"]["messages"].items():
        for example in message.get("examples", []):
            frame = json.loads(
                json.dumps(example["payload"]).replace("jobs:ID", f"jobs:{job['id']}")
            )
            reply = await ws.request(frame)
            kind = frames.kind(reply)
            assert kind in frames.replies(f"receive{name}"), (frame, reply)
            seen.add(kind)
    # Malformed frames get an error with a null id, as documented.
    await ws.send("{not json")
    while (reply := await ws.recv())["type"] != "error":
        seen.add(frames.kind(reply))  # the job channel's replayed story
    assert frames.kind(reply) == "Error" and reply["id"] is None
    seen.add("Error")
    # Channel messages: the replayed job story and a live publish.
    await ws.request({"op": "subscribe", "channel": "news", "id": 10})
    await ws.request({"op": "publish", "channel": "news", "data": [1, 2], "id": 11})
    for frame in ws.stash:
        seen.add(frames.kind(frame))
    while len(seen & {"Message", "Batch"}) == 0:
        seen.add(frames.kind(await ws.recv()))
    assert {"Ack", "Error"} <= seen
