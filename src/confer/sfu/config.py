"""What an SFU worker needs to know, handed over from the API process's settings."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SfuConfig:
    workers: int = 0  # 0: one per core
    # Local addresses to gather ICE host candidates on; empty: every interface but loopback.
    ice_addresses: list[str] = field(default_factory=list)
    # The public address announced in candidates when the SFU sits behind 1:1 NAT.
    announced_ip: str = ""
    video_codecs: list[str] = field(default_factory=lambda: ["vp8", "vp9", "h264"])
    max_bitrate: int = 2_500_000  # per published video track
    receive_buffer: int = 4 * 1024 * 1024  # bytes per UDP socket (rmem_max caps non-root)
    start_bitrate: int = 1_500_000  # a subscriber's estimate before it reports anything
    # Test switch: drop this fraction of packets sent to subscribers (loss-recovery tests).
    test_send_loss: float = 0.0

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SfuConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def from_settings(cls, settings: Any) -> SfuConfig:
        """Read the `sfu_*` settings (defaults for any a given Settings lacks)."""
        d = cls()

        def get(name: str, default: Any) -> Any:
            return getattr(settings, f"sfu_{name}", default)

        return cls(
            workers=get("workers", d.workers),
            ice_addresses=list(get("ice_addresses", d.ice_addresses)),
            announced_ip=get("announced_ip", d.announced_ip),
            video_codecs=[c.lower() for c in get("video_codecs", d.video_codecs)],
            max_bitrate=get("max_bitrate", d.max_bitrate),
            test_send_loss=get("test_send_loss", d.test_send_loss),
        )
