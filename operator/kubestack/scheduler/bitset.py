"""Host sets as Python ints (bit *i* = host slot *i*) and a bucketed sorted index.

A filter's answer over 10,000 hosts is one int; intersecting two answers is one C-level
``&`` of ~160 machine words, counting one is ``int.bit_count()``. Enumerating or testing
members goes through ``to_bytes`` once (:class:`Members`), never through per-bit shifts of
the big int.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator

__all__ = ["Members", "bits", "mask_of", "SortedPairs"]

_BYTE_BITS: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i in range(8) if byte >> i & 1) for byte in range(256))


def bits(mask: int) -> list[int]:
    """The set bit positions of ``mask``, ascending."""
    if not mask:
        return []
    data = mask.to_bytes((mask.bit_length() + 7) >> 3, "little")
    table = _BYTE_BITS
    return [base + b for base, byte in zip(range(0, len(data) * 8, 8), data) if byte
            for b in table[byte]]


def mask_of(slots: Iterable[int]) -> int:
    """The mask with exactly ``slots`` set."""
    mask = 0
    for slot in slots:
        mask |= 1 << slot
    return mask


class Members:
    """O(1) membership tests on a snapshot of a mask."""

    __slots__ = ("_data", "_n")

    def __init__(self, mask: int):
        self._n = (mask.bit_length() + 7) >> 3
        self._data = mask.to_bytes(self._n, "little")

    def __contains__(self, slot: int) -> bool:
        i = slot >> 3
        return i < self._n and bool(self._data[i] >> (slot & 7) & 1)


class SortedPairs:
    """A sorted multiset of ``(value, slot)`` pairs: O(log n) add/remove, ordered scans.

    Kept as a list of sorted buckets of bounded size, each with a bitmask of its slots, so
    an update moves at most one bucket's worth of references, and a scan restricted to a
    host set skips every bucket holding none of them with one int ``&``.
    """

    LOAD = 256

    __slots__ = ("_buckets", "_maxes", "_masks", "_len")

    def __init__(self, items: Iterable[tuple[float, int]] = ()):
        self._buckets: list[list[tuple[float, int]]] = []
        self._maxes: list[tuple[float, int]] = []
        self._masks: list[int] = []
        self._len = 0
        self.rebuild(items)

    def rebuild(self, items: Iterable[tuple[float, int]]) -> None:
        data = sorted(items)
        step = self.LOAD
        self._buckets = [data[i:i + step] for i in range(0, len(data), step)]
        self._maxes = [b[-1] for b in self._buckets]
        self._masks = [mask_of(s for _v, s in b) for b in self._buckets]
        self._len = len(data)

    def __len__(self) -> int:
        return self._len

    def add(self, item: tuple[float, int]) -> None:
        self._len += 1
        bit = 1 << item[1]
        if not self._buckets:
            self._buckets.append([item])
            self._maxes.append(item)
            self._masks.append(bit)
            return
        pos = bisect_left(self._maxes, item)
        if pos == len(self._maxes):
            pos -= 1
            bucket = self._buckets[pos]
            bucket.append(item)
            self._maxes[pos] = item
        else:
            bucket = self._buckets[pos]
            insort(bucket, item)
        self._masks[pos] |= bit
        if len(bucket) > 2 * self.LOAD:
            tail = bucket[self.LOAD:]
            del bucket[self.LOAD:]
            self._maxes[pos] = bucket[-1]
            self._masks[pos] = mask_of(s for _v, s in bucket)
            self._buckets.insert(pos + 1, tail)
            self._maxes.insert(pos + 1, tail[-1])
            self._masks.insert(pos + 1, mask_of(s for _v, s in tail))

    def remove(self, item: tuple[float, int]) -> None:
        pos = bisect_left(self._maxes, item)
        bucket = self._buckets[pos] if pos < len(self._buckets) else None
        i = bisect_left(bucket, item) if bucket is not None else 0
        if bucket is None or i == len(bucket) or bucket[i] != item:
            raise KeyError(item)
        del bucket[i]
        self._len -= 1
        if not bucket:
            del self._buckets[pos]
            del self._maxes[pos]
            del self._masks[pos]
            return
        self._masks[pos] &= ~(1 << item[1])
        if i == len(bucket):
            self._maxes[pos] = bucket[-1]

    def ascending(self) -> Iterator[tuple[float, int]]:
        for bucket in self._buckets:
            yield from bucket

    def descending(self) -> Iterator[tuple[float, int]]:
        for bucket in reversed(self._buckets):
            yield from reversed(bucket)

    def mask_at_least(self, value: float) -> int:
        """The slots whose value is >= ``value``: whole buckets by their masks, one
        bucket item by item."""
        pos = bisect_left(self._maxes, (value, -1))
        if pos == len(self._buckets):
            return 0
        mask = 0
        for bmask in self._masks[pos + 1:]:
            mask |= bmask
        for v, slot in self._buckets[pos]:
            if v >= value:
                mask |= 1 << slot
        return mask

    def ascending_in(self, mask: int, members: Members) -> Iterator[tuple[float, int]]:
        """The pairs whose slot is in ``mask`` (``members`` is ``Members(mask)``)."""
        for bucket, bmask in zip(self._buckets, self._masks):
            if bmask & mask:
                for item in bucket:
                    if item[1] in members:
                        yield item

    def descending_in(self, mask: int, members: Members) -> Iterator[tuple[float, int]]:
        for i in range(len(self._buckets) - 1, -1, -1):
            if self._masks[i] & mask:
                for item in reversed(self._buckets[i]):
                    if item[1] in members:
                        yield item
