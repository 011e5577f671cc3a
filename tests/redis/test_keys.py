"""The Redis names of one deployment (pure: perfgate.redis.keys)."""

from perfgate.redis.keys import Keys, index_member


def test_keys() -> None:
    keys = Keys("p:")
    assert keys.channel_of(keys.pubsub("jobs:abc")) == "jobs:abc"
    assert keys.channel_of("other:thing") is None
    assert keys.meta("c") != keys.history("c")


def test_job_names_share_the_prefix_and_index_members_sort_by_time() -> None:
    keys = Keys("p:")
    names = [keys.job("j"), keys.log("j"), keys.stream("high"), keys.index("all"), keys.held("t")]
    assert all(name.startswith("p:") for name in names) and len(set(names)) == len(names)
    assert index_member(9.5, "b") < index_member(10.0, "a")
