"""Channel names and who may subscribe or publish where (perfgate.gateway.channels)."""

import pytest

from perfgate.auth import Principal
from perfgate.errors import Forbidden, ValidationError
from perfgate.gateway import channels


def test_channel_names() -> None:
    assert channels.check_name("room:42/chat") == "room:42/chat"
    assert channels.check_name("$sys:metrics") == "$sys:metrics"
    for bad in ["", "a b", "x" * 129, "$other", 7, None, "é"]:
        with pytest.raises(ValidationError):
            channels.check_name(bad)


def test_channel_permissions() -> None:
    sub = Principal("s", frozenset({"subscribe"}))
    pub = Principal("p", frozenset({"subscribe", "publish"}))
    admin = Principal("a", frozenset({"admin"}))
    assert channels.check_subscribe(sub, "jobs:1") == "jobs:1"
    with pytest.raises(Forbidden):
        channels.check_subscribe(sub, "$sys:x")
    assert channels.check_subscribe(admin, "$sys:x") == "$sys:x"
    with pytest.raises(Forbidden):
        channels.check_client_publish(sub, "room")
    with pytest.raises(Forbidden):
        channels.check_client_publish(pub, "jobs:1")
    with pytest.raises(Forbidden):
        channels.check_client_publish(admin, "jobs:1")
    with pytest.raises(Forbidden):
        channels.check_client_publish(pub, "$sys:x")
    assert channels.check_publish(None, "jobs:1") == "jobs:1"
    with pytest.raises(Forbidden):
        channels.check_publish(pub, "jobs:1")
