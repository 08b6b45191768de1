"""The AI service in-process with its real worker process: off-loop inference, crash recovery,
clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from confer.ai.service import AIService
from confer.config import Settings
from confer.errors import Unavailable
from tests.ai.speech import BECKETT_TEXT, SAME_WORDS, beckett_path, wer


@pytest.fixture
async def service(model_dir: Path, tmp_path: Path) -> AIService:
    svc = AIService(Settings(data_dir=tmp_path, ai_model_dir=model_dir))
    yield svc  # type: ignore[misc]
    await svc.close()


async def test_the_event_loop_keeps_running_during_inference(service: AIService) -> None:
    await service.ensure_started()
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.02)

    task = asyncio.create_task(ticker())
    result = await service.recognize(1, beckett_path().read_bytes(), "wav", 16000, "en")
    stop.set()
    await task
    assert wer(BECKETT_TEXT, result["text"]) <= SAME_WORDS
    assert ticks >= 10  # the loop ticked all along while the model worked elsewhere


async def test_a_killed_worker_is_replaced_on_the_next_request(service: AIService) -> None:
    await service.ensure_started()
    assert service.worker is not None
    first = service.worker.pid
    assert first is not None and first != os.getpid()
    os.kill(first, signal.SIGKILL)  # our own child process
    for _ in range(600):  # the reader thread sees the pipe close
        if not service.worker.alive:
            break
        await asyncio.sleep(0.05)
    assert not service.worker.alive, "the dead worker was not noticed within 30 s"
    result = await service.recognize(1, beckett_path().read_bytes(), "wav", 16000, "en")
    assert wer(BECKETT_TEXT, result["text"]) <= SAME_WORDS
    assert service.worker.pid not in (None, first)


async def test_close_stops_the_worker_process(service: AIService) -> None:
    await service.ensure_started()
    assert service.worker is not None
    pid = service.worker.pid
    await service.close()
    assert service.worker is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # type: ignore[arg-type]


async def test_a_failed_start_is_40001_and_not_retried_at_once(tmp_path: Path) -> None:
    svc = AIService(Settings(data_dir=tmp_path, ai_model_sha256="0" * 64))
    try:
        with pytest.raises(Unavailable) as first:
            await svc.ensure_started()
        assert first.value.code == 40001 and "sha256" in str(first.value.details)
        with pytest.raises(Unavailable) as second:  # within the back-off: no new process
            await svc.ensure_started()
        assert second.value.headers["Retry-After"] == "5"
        assert svc.status()["state"] == "failed"
    finally:
        await svc.close()
