"""Settings: every knob is a `CONFER_*` environment variable (see README, "Settings")."""

from __future__ import annotations

import json
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Secrets that appear in tutorials and example configs: refused outside dev mode.
WELL_KNOWN_SECRETS = frozenset(
    {
        "secret",
        "changeme",
        "change-me",
        "your-secret-key",
        "your_secret_key",
        "jwt-secret",
        "supersecret",
        "password",
        "confer",
        "development",
        "test",
        "secret-key",
        "mysecret",
    }
)
MIN_SECRET_LENGTH = 32
# The contract's services and the ports they listen on when run alone (`confer serve --only`).
SERVICES = {
    "user": 8080,
    "signaling": 8081,
    "meeting": 8082,
    "media": 8083,
    "ai": 8084,
}
DEFAULT_PORT = 8000  # several services in one process (all of them by default)


def port_for(services: list[str]) -> int:
    """The port a process serving `services` listens on unless told otherwise."""
    return SERVICES[services[0]] if len(services) == 1 else DEFAULT_PORT


class InsecureConfiguration(RuntimeError):
    """Raised when production mode would start with a weak setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONFER_", extra="ignore")

    # Where SQLite, uploads, generated secrets and certificates live.
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str = ""
    # dev: generate and keep a random secret; prod: refuse weak ones.
    mode: Literal["dev", "prod"] = "dev"
    secret_key: str = ""
    public_url: str = ""
    # Proxies whose X-Forwarded-For / -Proto are believed (the gateway), comma-separated.
    forwarded_allow_ips: str = "127.0.0.1"
    # The contract's services this process runs (`confer serve --only`); see `SERVICES`.
    services: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(SERVICES))

    access_token_ttl: int = 86400
    refresh_token_ttl: int = 30 * 86400
    jwt_issuer: str = "meeting-system"

    # Lists are comma-separated (or JSON arrays) in the environment.
    stun_servers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_secret: str = ""
    turn_ttl: int = 86400

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Where uploads are kept (default <data_dir>/uploads); nodes of one deployment share it
    # (NFS or the like), since any node may serve a download.
    uploads_dir: Path | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    max_page_size: int = 100
    # Rendered meeting lists each process keeps (services.list_cache), MB; 0 turns it off.
    meeting_list_cache_mb: float = Field(default=32, ge=0)

    # Media uploads (files): per-user limits, on top of max_upload_bytes.
    upload_burst: int = 10  # uploads a user may start back to back...
    upload_rate_per_minute: float = 20.0  # ...then this many per minute
    upload_concurrency_per_user: int = 2  # uploads of one user in progress at once

    # Token buckets: sustained requests/second and burst, per client IP and per user.
    rate_limit_rps: float = 50.0
    rate_limit_burst: int = 200
    auth_rate_limit_rps: float = 0.5
    auth_rate_limit_burst: int = 10

    # HTTP edge (rate limiter memory, /metrics access).
    rate_limit_max_keys: int = 100_000  # in-memory buckets kept before idle ones are evicted
    metrics_token: str = ""  # bearer token for /metrics; empty: loopback clients only

    # Signaling.
    ws_idle_timeout: float = 60.0
    ws_heartbeat_interval: float = 30.0
    ws_resume_grace: float = 30.0
    ws_max_message_bytes: int = 64 * 1024
    ws_send_queue: int = 256
    ws_rate_limit_rps: float = 20.0
    ws_rate_limit_burst: int = 60
    # Signaling: connection attempts per client IP (each costs a token check and a query).
    ws_connect_rate: float = 20.0
    ws_connect_burst: int = 200
    chat_max_length: int = 4000
    max_screen_shares: int = 1

    # Meetings (REST meeting service).
    meeting_max_participants: int = 1000  # the highest max_participants a host may set
    meeting_session_ttl: int = 86400  # lifetime of the session token that join returns
    # Wrong passwords per user and meeting, and joins of unknown meeting ids per user...
    meeting_password_attempts: int = 10
    meeting_password_window: float = 300.0  # ...within this many seconds, then 429

    # AI service (speech recognition, live captions, transcripts).
    ai_enabled: bool = True  # false: the AI endpoints answer 40001
    ai_model_dir: Path | None = None  # default: <data_dir>/models/whisper-base
    ai_model_sha256: str = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
    ai_preload: bool = False  # start the worker at startup instead of on first use
    ai_threads: int = 2  # CTranslate2 threads in the worker process
    ai_languages: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["zh", "en"])
    ai_queue_size: int = 4  # recognitions waiting or running; more -> 503 (40001)
    ai_user_concurrency: int = 2  # recognitions of one user in progress at once; more -> 429
    ai_rate_per_minute: float = 30.0  # recognitions per user and minute (burst of 5); -> 429
    ai_max_audio_bytes: int = 8 * 1024 * 1024  # decoded audio_data
    ai_max_audio_seconds: float = 60.0
    ai_start_timeout: float = 60.0
    ai_request_timeout: float = 120.0
    ai_caption_silence_ms: int = 480  # pause that ends an utterance
    ai_caption_partial_interval: float = 1.0  # seconds between partial captions
    ai_caption_max_utterance: float = 15.0  # longer speech is cut into several captions

    # SFU (media plane): worker processes forwarding RTP; see docs "Media".
    sfu_enabled: bool = True  # false: no media workers (peer-to-peer relay only)
    sfu_workers: int = 0  # worker processes; 0: one per core
    # Local addresses for ICE host candidates (comma-separated); empty: all but loopback.
    sfu_ice_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sfu_announced_ip: str = ""  # public IP put in candidates when behind 1:1 NAT
    sfu_video_codecs: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["vp8", "vp9", "h264"]
    )
    sfu_max_bitrate: int = 2_500_000  # per published video track, bits/s
    sfu_test_send_loss: float = 0.0  # test switch: drop this fraction sent to subscribers
    # Peers one node's SFU takes before new meetings go to other nodes (with Redis).
    sfu_node_capacity: int = 400

    @field_validator(
        "stun_servers",
        "turn_urls",
        "services",
        "cors_origins",
        "ai_languages",
        "sfu_ice_addresses",
        "sfu_video_codecs",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: list[str]) -> list[str]:
        names = [v.strip().lower() for v in value]
        if names == ["all"] or not names:
            return list(SERVICES)
        if "notification" in names:
            raise ValueError("the notification service (8085) is not built yet")
        unknown = sorted(set(names) - set(SERVICES))
        if unknown:
            raise ValueError(f"unknown services {unknown}; known: {', '.join(SERVICES)}, all")
        return [n for n in SERVICES if n in names]

    @cached_property
    def sqlite_path(self) -> Path:
        return self.data_dir / "confer.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def upload_dir(self) -> Path:
        return self.uploads_dir or self.data_dir / "uploads"

    def resolve_secret(self) -> str:
        """Return the JWT secret, generating a persistent one in dev mode."""
        key = self.secret_key
        if key:
            weak = len(key) < MIN_SECRET_LENGTH or key.lower() in WELL_KNOWN_SECRETS
            if weak and self.mode == "prod":
                raise InsecureConfiguration(
                    f"CONFER_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters "
                    "and not a well-known value"
                )
            return key
        if self.mode == "prod":
            raise InsecureConfiguration("CONFER_SECRET_KEY is required when CONFER_MODE=prod")
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key


def load_settings() -> Settings:
    return Settings()
