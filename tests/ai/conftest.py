"""Fixtures for the AI tests: the assembled model, an in-process recognizer, AI servers."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from confer.ai.model import ensure_model
from confer.ai.recognizer import Recognizer
from tests.support.api import Api
from tests.support.servers import ConferServer

# These servers exercise the AI service only: no SFU worker processes competing for the CPU.
NO_MEDIA = {"CONFER_SFU_ENABLED": "false"}


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The Whisper model assembled once from the installed wheels for the whole session."""
    return ensure_model(Path(tempfile.mkdtemp(prefix="confer-model-")) / "whisper-base")


@pytest.fixture(scope="session")
def recognizer(model_dir: Path) -> Recognizer:
    return Recognizer(model_dir, threads=2, languages=("zh", "en"))


@pytest.fixture(scope="session")
def ai_server(server_factory: Callable[..., ConferServer], model_dir: Path) -> ConferServer:
    env = {**NO_MEDIA, "CONFER_AI_MODEL_DIR": str(model_dir), "CONFER_AI_PRELOAD": "true"}
    return server_factory(env)


@pytest.fixture(scope="session")
def tight_server(server_factory: Callable[..., ConferServer], model_dir: Path) -> ConferServer:
    """Small limits, to reach each of them with little work."""
    return server_factory(
        {
            **NO_MEDIA,
            "CONFER_AI_MODEL_DIR": str(model_dir),
            "CONFER_AI_PRELOAD": "true",
            "CONFER_AI_QUEUE_SIZE": "1",
            "CONFER_AI_USER_CONCURRENCY": "1",
            "CONFER_AI_RATE_PER_MINUTE": "1",
            "CONFER_AI_MAX_AUDIO_SECONDS": "5",
            "CONFER_AI_MAX_AUDIO_BYTES": "300000",
        }
    )


@pytest.fixture
def ai_api(ai_server: ConferServer) -> Iterator[Api]:
    client = Api(ai_server.url)
    client.http.timeout = 300
    yield client
    client.close()


@pytest.fixture
def tight_api(tight_server: ConferServer) -> Iterator[Api]:
    client = Api(tight_server.url)
    client.http.timeout = 300
    yield client
    client.close()
