"""/api/v1/ai: speech recognition (the spec's 4.1) and the service's status."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import Depends
from pydantic import BaseModel, Field, field_validator

from confer.ai.audio import FORMATS, AudioError, sniff
from confer.ai.service import AIService, ai_failed, ai_unavailable
from confer.api.deps import Ctx, CurrentUser
from confer.api.envelope import Envelope
from confer.api.routes import API_PREFIX, api_router
from confer.errors import PayloadTooLarge, ValidationFailed

router = api_router(API_PREFIX, tags=["ai"])

AudioFormat = Literal["wav", "webm", "ogg", "ogg-opus", "opus", "mp3", "pcm"]
assert set(AudioFormat.__args__) == set(FORMATS)  # type: ignore[attr-defined]


async def get_ai(ctx: Ctx) -> AIService:
    service = ctx.extras.get("ai")
    if service is None:
        raise ai_unavailable("the AI service is not installed in this process")
    return service  # type: ignore[no-any-return]


AI = Annotated[AIService, Depends(get_ai)]


class RecognitionRequest(BaseModel):
    audio_data: str = Field(description="The audio file, base64-encoded (standard alphabet).")
    language: str | None = Field(
        default="auto",
        description="`zh`, `en`, or `auto` (also null / empty): the model picks among the "
        "server's languages. Chinese comes back in simplified characters.",
    )
    format: AudioFormat = Field(
        default="wav",
        description="Container: wav, webm (Opus), ogg / ogg-opus / opus, mp3, or pcm "
        "(raw 16-bit little-endian mono at `sample_rate`).",
    )
    sample_rate: int = Field(
        default=16000,
        ge=8000,
        le=48000,
        description="Samples per second of `pcm` audio; containers carry their own rate.",
    )

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
            return "auto"
        if isinstance(value, str):
            return value.strip().lower().split("-")[0]  # zh-CN -> zh, en-US -> en
        return value


class Recognition(BaseModel):
    text: str
    confidence: float = Field(description="Mean token probability of the transcript (0 to 1).")
    language: str
    duration: float = Field(description="Seconds of audio received.")


@router.post(
    "/ai/speech/recognition",
    response_model=Envelope[Recognition],
    summary="Recognize speech in an audio file",
    description="Offline recognition with Whisper base. 40001 (503) when the AI service is "
    "unavailable or busy; 40002 (400) when the audio cannot be decoded; 413 past the size or "
    "duration limit.",
)
async def recognize(
    body: RecognitionRequest, user: CurrentUser, ai: AI, ctx: Ctx
) -> Envelope[Recognition]:
    settings = ctx.settings
    language = None if body.language == "auto" else body.language
    if language is not None and language not in settings.ai_languages:
        raise ValidationFailed(
            f"Invalid request: language: unsupported language {body.language!r}",
            details=[
                {
                    "field": "language",
                    "message": f"use one of {', '.join(settings.ai_languages)} or auto",
                }
            ],
        )
    limit = settings.ai_max_audio_bytes
    if len(body.audio_data) > (limit + 2) // 3 * 4 + 4:
        raise PayloadTooLarge(
            "Audio too large", details=f"audio_data may hold at most {limit} bytes of audio"
        )
    try:
        data = base64.b64decode(body.audio_data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(
            "Invalid request: audio_data: not valid base64",
            details=[{"field": "audio_data", "message": "not valid base64"}],
        ) from exc
    if len(data) > limit:
        raise PayloadTooLarge(
            "Audio too large", details=f"audio_data may hold at most {limit} bytes of audio"
        )
    try:
        sniff(data, body.format)
    except AudioError as exc:
        raise ai_failed(str(exc)) from exc
    result = await ai.recognize(user.id, data, body.format, body.sample_rate, language)
    return Envelope(data=Recognition(**result))


@router.get(
    "/ai/status",
    response_model=Envelope[dict[str, Any]],
    summary="Whether the AI service can take work, and its limits (extension)",
)
async def status(user: CurrentUser, ai: AI) -> Envelope[dict[str, Any]]:
    return Envelope(data=ai.status())
