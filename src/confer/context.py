"""The per-process object graph: settings, database, token codec, bus and services.

Built once by the app factory and reached from routes through `api.deps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confer.auth.tokens import TokenCodec
from confer.bus import EventBus, create_bus
from confer.config import Settings
from confer.db.session import Database
from confer.services.accounts import Accounts
from confer.services.list_cache import VersionedCache


@dataclass
class AppContext:
    settings: Settings
    db: Database
    codec: TokenCodec
    bus: EventBus
    accounts: Accounts
    # Rendered meeting lists by (user, status, page, page_size), see services.list_cache.
    meeting_lists: VersionedCache
    # Optional subsystems (signaling hub, SFU, AI) register themselves here by name.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        codec = TokenCodec(
            settings.resolve_secret(), settings.jwt_issuer, settings.access_token_ttl
        )
        return cls(
            settings=settings,
            db=Database(settings.effective_database_url),
            codec=codec,
            bus=create_bus(settings.redis_url),
            accounts=Accounts(codec, settings.refresh_token_ttl),
            meeting_lists=VersionedCache(int(settings.meeting_list_cache_mb * (1 << 20))),
        )

    async def start(self) -> None:
        await self.bus.start()

    async def close(self) -> None:
        await self.bus.close()
        await self.db.dispose()
