"""The AI worker process (the parent's handle on it is `client.WorkerClient`).

Inference never runs on the API's event loop: a spawned process loads the model once and owns
two threads, one reading the pipe (API requests decoded here, Opus packets fed to the caption
engine, which runs the VAD) and one running inference from `JobQueue`. CTranslate2 and ONNX
release the GIL, so the reader keeps up while the model works.

Pipe messages, parent -> child: ("recognize", id, bytes, format, sample_rate, language),
("open", key, meeting_id, user_id, language, tag), ("audio", [(key, payload, rtp_ts), ...]),
("close", key), ("stop",). Child -> parent: ("ready", info), ("failed", reason),
("result", id, dict), ("error", id, kind, message), ("caption", dict).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger("confer.ai.worker")


@dataclass(frozen=True)
class WorkerConfig:
    model_dir: Path
    model_sha256: str
    threads: int = 2
    languages: tuple[str, ...] = ("zh", "en")
    max_seconds: float = 60.0
    silence_ms: int = 480
    partial_interval: float = 1.0
    max_utterance: float = 15.0
    extra: dict[str, Any] = field(default_factory=dict)


def child_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of the spawned process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    logging.basicConfig(level=logging.WARNING)
    os.environ["HF_HUB_OFFLINE"] = "1"
    # CTranslate2's OpenMP threads otherwise spin between layers and starve the reader thread
    # (Opus + VAD every 20 ms) on small machines: measured 4-6 s caption lag, 1.9 s without.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    started = time.monotonic()
    try:
        import av  # noqa: F401
        import faster_whisper  # noqa: F401
        import opencc  # noqa: F401

        from confer.ai.audio import AudioError, AudioTooLong, decode
        from confer.ai.captions import CaptionEngine, CaptionEvent, Job
        from confer.ai.jobs import JobQueue
        from confer.ai.model import ModelUnavailable, ensure_model
        from confer.ai.recognizer import Recognizer
    except ImportError as exc:
        conn.send(("failed", f"the AI extra is not installed ({exc}); install confer[ai]"))
        return
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        # If the parent is gone the reader loop notices and exits.
        with send_lock, contextlib.suppress(OSError, EOFError):
            conn.send(msg)

    try:
        model_dir = ensure_model(config.model_dir, config.model_sha256)
        recognizer = Recognizer(model_dir, config.threads, config.languages)
    except ModelUnavailable as exc:
        send(("failed", str(exc)))
        return
    except Exception as exc:  # e.g. CTranslate2 refusing the file
        send(("failed", f"the model could not be loaded: {exc}"))
        return

    def emit(event: CaptionEvent) -> None:
        send(("caption", event.as_dict()))

    engine = CaptionEngine(
        recognizer,
        emit,
        silence_ms=config.silence_ms,
        partial_interval=config.partial_interval,
        max_utterance=config.max_utterance,
    )
    queue = JobQueue()

    def enqueue(jobs: list[Job]) -> None:
        for job in jobs:
            if job.final:
                queue.put_final(job)
            elif engine.partials_affordable:
                queue.put_partial(job)

    def infer() -> None:
        while (item := queue.get()) is not None:
            kind, job = item
            try:
                if kind == "request":
                    job_id, audio, language = job
                    result = recognizer.recognize(audio, language)
                    send(("result", job_id, result.as_dict()))
                else:
                    engine.run_job(job)
            except Exception as exc:
                log.exception("inference failed")
                if kind == "request":
                    send(("error", job[0], "failed", f"recognition failed: {exc}"))

    inference = threading.Thread(target=infer, name="ai-inference", daemon=True)
    inference.start()
    send(("ready", {"load_seconds": round(time.monotonic() - started, 3), "pid": os.getpid()}))

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        kind = msg[0]
        if kind == "audio":
            for key, payload, ts in msg[1]:
                enqueue(engine.feed(key, payload, ts))
        elif kind == "recognize":
            _, job_id, data, fmt, rate, language = msg
            try:
                audio = decode(data, fmt, rate, config.max_seconds)
            except AudioTooLong as exc:
                send(("error", job_id, "too_long", str(exc)))
                continue
            except AudioError as exc:
                send(("error", job_id, "audio", str(exc)))
                continue
            queue.put_request((job_id, audio, language))
        elif kind == "open":
            _, key, meeting_id, user_id, language, tag = msg
            engine.open(key, meeting_id, user_id, language, tag)
        elif kind == "close":
            enqueue(engine.close(msg[1]))
        elif kind == "stop":
            break
    queue.close()
    # Let a running transcription finish: exiting under CTranslate2's threads aborts the process.
    inference.join(4.0)  # the parent terminates us after 5 s anyway
