"""Splitting an evaluation across processes: which rank runs which items.

``torchrun`` / ``python -m torch.distributed.run`` and ``accelerate launch`` start one process
per rank and set the environment variables ``RANK`` (this process, 0-based) and
``WORLD_SIZE`` (number of processes); :func:`detect_shard` reads them. A process started
without them is the only rank of a world of one.

Items are assigned by a stable rule that every rank computes on its own, without talking to
the others: sort the item keys, then deal them round-robin (rank ``r`` takes positions
``r, r + W, r + 2W, ...``). The slices are disjoint and together cover every item, whatever
order the dataset lists them in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from svac.errors import ConfigError

#: Environment variables set by torchrun and ``accelerate launch`` for each process.
RANK_ENV = "RANK"
WORLD_SIZE_ENV = "WORLD_SIZE"


@dataclass(frozen=True)
class Shard:
    """One process's place in a sharded run.

    Attributes:
        rank: this process, in ``[0, world_size)``.
        world_size: number of processes sharing the work (>= 1).

    Raises:
        ConfigError: when ``world_size < 1`` or ``rank`` is outside ``[0, world_size)``.
    """

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ConfigError(f"world size must be >= 1, got {self.world_size}")
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank must be in [0, {self.world_size}), got {self.rank}")

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that merges the results."""
        return self.rank == 0


def detect_shard(env: Mapping[str, str] | None = None) -> Shard:
    """This process's shard from ``RANK`` / ``WORLD_SIZE`` (torchrun, ``accelerate launch``).

    Args:
        env: the environment to read (default ``os.environ``).

    Returns:
        ``Shard(rank, world_size)``; ``Shard(0, 1)`` when neither variable is set.

    Raises:
        ConfigError: when only one of the two is set, or either is not an integer or out of range.
    """
    env = os.environ if env is None else env
    rank, world = env.get(RANK_ENV), env.get(WORLD_SIZE_ENV)
    if rank is None and world is None:
        return Shard()
    if rank is None or world is None:
        raise ConfigError(f"{RANK_ENV} and {WORLD_SIZE_ENV} must be set together (got {RANK_ENV}={rank!r}, "
                          f"{WORLD_SIZE_ENV}={world!r}); launch with torchrun or accelerate launch")
    try:
        rank_value, world_value = int(rank), int(world)
    except ValueError as exc:
        raise ConfigError(f"{RANK_ENV}={rank!r} and {WORLD_SIZE_ENV}={world!r} must be integers") from exc
    return Shard(rank=rank_value, world_size=world_value)


def shard_keys(keys: Sequence[str], shard: Shard) -> list[str]:
    """The keys this shard runs: sorted, then dealt round-robin.

    Args:
        keys: every item key of the run (unique strings).
        shard: this process's shard.

    Returns:
        ``sorted(keys)[shard.rank::shard.world_size]``.

    Raises:
        ConfigError: when a key repeats (two items would share one result file).
    """
    ordered = sorted(keys)
    for a, b in zip(ordered, ordered[1:]):
        if a == b:
            raise ConfigError(f"item key {a!r} repeats; every evaluated item needs a unique key")
    return ordered[shard.rank::shard.world_size]
