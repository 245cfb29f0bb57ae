import pytest

from workbench.engine.distributed import ShardedBatchSampler, shard


@pytest.mark.parametrize("size,batch,world", [(100, 32, 2), (97, 16, 4), (10, 4, 2), (33, 8, 1)])
def test_sharded_batches_reassemble_the_single_process_batches(size, batch, world):
    single = list(ShardedBatchSampler(size, batch, seed=7))
    parts = [list(ShardedBatchSampler(size, batch, seed=7, rank=r, world_size=world)) for r in range(world)]
    assert len({len(p) for p in parts}) == 1, "every process must run the same number of steps"
    for step, whole in enumerate(single[: len(parts[0])]):
        assert sum((p[step] for p in parts), []) == whole
        assert all(len(p[step]) >= 1 for p in parts)
        assert ShardedBatchSampler(size, batch, seed=7).global_size(step) == len(whole)
    assert all(len(p) == len(list(ShardedBatchSampler(size, batch, seed=7, rank=r, world_size=world)))
               for r, p in enumerate(parts))
    # a last global batch smaller than the number of processes is dropped everywhere
    assert sum(len(b) for b in parts[0]) * world >= size - world - (size % batch if size % batch < world else 0)


def test_order_depends_on_seed_only():
    a = list(ShardedBatchSampler(50, 8, seed=1))
    assert a == list(ShardedBatchSampler(50, 8, seed=1))
    assert a != list(ShardedBatchSampler(50, 8, seed=2))
    assert sorted(i for b in a for i in b) == list(range(50))
    assert list(ShardedBatchSampler(5, 2, seed=0, shuffle=False)) == [[0, 1], [2, 3], [4]]


def test_global_batch_must_divide():
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        ShardedBatchSampler(10, 8, seed=0, rank=0, world_size=3)


def test_shard_covers_every_item_once():
    items = list(range(11))
    got = sorted(i for r in range(3) for i in shard(items, r, 3))
    assert got == items
