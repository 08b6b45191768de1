"""The last packets of each upstream stream, kept to answer NACKs without asking upstream.

A ring indexed by sequence number: storing is one slot write, a lookup checks that the slot
still holds the wanted number. Packets are kept as received from the publisher (decrypted,
not yet rewritten), so one cache serves every subscriber of the stream.
"""

from __future__ import annotations


class PacketCache:
    __slots__ = ("_mask", "_seqs", "_slots")

    def __init__(self, size: int = 512) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError("cache size must be a power of two")
        self._mask = size - 1
        self._slots: list[bytes | None] = [None] * size
        self._seqs = [-1] * size

    def store(self, seq: int, packet: bytes) -> None:
        i = seq & self._mask
        self._slots[i] = packet
        self._seqs[i] = seq

    def get(self, seq: int) -> bytes | None:
        i = seq & self._mask
        return self._slots[i] if self._seqs[i] == seq else None

    def __len__(self) -> int:
        return sum(1 for s in self._slots if s is not None)
