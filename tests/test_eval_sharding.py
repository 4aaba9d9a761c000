"""Rank / world size detection and the disjoint item slices."""

from __future__ import annotations

import pytest

from svac.errors import ConfigError
from svac.evaluation.sharding import Shard, detect_shard, shard_keys


def test_detect_shard_reads_torchrun_variables():
    assert detect_shard({}) == Shard(0, 1)
    assert detect_shard({"RANK": "3", "WORLD_SIZE": "4"}) == Shard(3, 4)
    with pytest.raises(ConfigError, match="must be set together"):
        detect_shard({"RANK": "1"})
    with pytest.raises(ConfigError, match="must be integers"):
        detect_shard({"RANK": "one", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match=r"rank must be in \[0, 2\)"):
        detect_shard({"RANK": "2", "WORLD_SIZE": "2"})


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shards_are_disjoint_cover_every_key_and_ignore_input_order(world):
    keys = [f"video{v}/{e}" for v in range(5) for e in range(3)]
    slices = [shard_keys(keys, Shard(r, world)) for r in range(world)]
    flat = [k for s in slices for k in s]
    assert sorted(flat) == sorted(keys) and len(flat) == len(set(flat))
    assert [shard_keys(list(reversed(keys)), Shard(r, world)) for r in range(world)] == slices
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_repeated_keys_are_refused():
    with pytest.raises(ConfigError, match="repeats"):
        shard_keys(["a/0", "b/0", "a/0"], Shard())
