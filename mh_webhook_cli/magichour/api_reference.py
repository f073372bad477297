"""The real Magic Hour API's values, in one place: enums, models, costs, tiers, limits.

Transcribed from the official Python SDK's generated code (PyPI ``magic-hour`` 0.90.0, under
``magic_hour/types/params`` and the ``create`` docstrings of ``magic_hour/resources/v1``), which
Sideko generates from Magic Hour's OpenAPI document. ``mhw emulate`` refuses what these lists
lack and charges what they say; ``tests/test_api_reference.py`` compares every list with the
installed SDK, so a new SDK release that changes one fails a test instead of drifting silently.

Two things no SDK of this version states, and what stands in for them here:
- video costs: the Python SDK only says "credits are charged when the job is queued". The Node
  SDK (npm ``magic-hour`` 0.43.1) prices text-to-video and image-to-video by resolution: 480p
  120, 720p 300, 1080p 600 credits per 5 seconds. 360p and 4k, newer than that, have no
  published price: they are charged as 480p and 1080p.
- the voice generator's price: the generated ``create`` says 0.1 credit a character, the
  hand-written ``generate`` next to it 0.05. The generated text (the API's own document) wins.

Pure data and arithmetic: no I/O but the voice list, read once from the package when first
needed (1,264 names; ``mhw emulate`` starts without reading it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import NamedTuple

DEFAULT_API_BASE = "https://api.magichour.ai"
KEYS_URL = "https://magichour.ai/developer?tab=api-key"
"""Where an account's API keys are made (Developer Hub)."""
TIERS = ("free", "creator", "pro", "business")
"""Account tiers, cheapest first (``V1AccountListResponse.tier``)."""
PAID_TIERS = TIERS[1:]

ERROR_MESSAGES: Mapping[int, str] = {401: "Unauthorized", 404: "Not Found"}
"""The fixed ``message`` of these statuses in the SDKs' error schemas (the Node SDK's
``V1...Response401`` and ``...Response404`` types: ``{"message": "Unauthorized"}``). 400 and
422 bodies are ``{"message": string}``."""

# --- AI image generator: POST /v1/ai-image-generator -----------------------------------------

IMAGE_ASPECT_RATIOS = ("1:1", "16:9", "9:16")
IMAGE_ORIENTATIONS = ("landscape", "portrait", "square")
"""Deprecated in favour of ``aspect_ratio``, which wins when both are given."""
IMAGE_RESOLUTIONS = ("640px", "1k", "2k", "4k", "auto")
"""``auto`` is deprecated: every model accepts it (mapped server-side from the tier)."""
IMAGE_TOOLS = (
    "ai-anime-generator",
    "ai-art-generator",
    "ai-background-generator",
    "ai-character-generator",
    "ai-face-generator",
    "ai-fashion-generator",
    "ai-icon-generator",
    "ai-illustration-generator",
    "ai-interior-design-generator",
    "ai-landscape-generator",
    "ai-logo-generator",
    "ai-manga-generator",
    "ai-outfit-generator",
    "ai-pattern-generator",
    "ai-photo-generator",
    "ai-sketch-generator",
    "ai-tattoo-generator",
    "album-cover-generator",
    "animated-characters-generator",
    "architecture-generator",
    "book-cover-generator",
    "comic-book-generator",
    "dark-fantasy-ai",
    "disney-ai-generator",
    "dnd-ai-art-generator",
    "emoji-generator",
    "fantasy-map-generator",
    "general",
    "graffiti-generator",
    "movie-poster-generator",
    "optical-illusion-generator",
    "pokemon-generator",
    "south-park-character-generator",
    "superhero-generator",
    "thumbnail-maker",
)
IMAGE_QUALITY_MODES: Mapping[str, str] = {"standard": "z-image-turbo", "pro": "seedream-v4"}
"""Deprecated ``style.quality_mode``: the model each stands for when ``model`` is not given."""
DEFAULT_IMAGE_MODEL = "default"
"""The SDK's ``model`` value that lets the API choose (also what a missing ``model`` means)."""


class ImageModel(NamedTuple):
    """One model's documented rules ("from N credits/image", its tiers and image counts).

    Named tuples rather than dataclasses here: a seventh of the cost to define, and this
    module is imported whenever ``mhw emulate`` starts.
    """

    credits_per_image: int
    """The "from" price: what the smallest resolution costs."""
    tiers: tuple[str, ...]
    image_counts: tuple[int, ...]
    resolutions: tuple[str, ...]


_ANY_COUNT = (1, 2, 3, 4)
_GRID = (1, 4, 9, 16)
_UP_TO_2K = ("640px", "1k", "2k")
_UP_TO_4K = ("640px", "1k", "2k", "4k")
_UP_TO_1K = ("640px", "1k")

IMAGE_MODELS: Mapping[str, ImageModel] = {
    # "default" is not in the model list: the SDK's generate() says "each image costs 5
    # credits", the counts are the older API's 1 to 4, any tier and resolution.
    "default": ImageModel(5, TIERS, _ANY_COUNT, ("640px", "1k", "2k", "4k")),
    "flux-2-klein": ImageModel(5, TIERS, (1,), _UP_TO_2K),
    "flux-schnell": ImageModel(5, TIERS, _ANY_COUNT, _UP_TO_2K),
    "gpt-image-2": ImageModel(50, PAID_TIERS, _ANY_COUNT, _UP_TO_4K),
    "gpt-image-2.5-flare": ImageModel(100, PAID_TIERS, _ANY_COUNT, _UP_TO_4K),
    "krea-2": ImageModel(10, TIERS, (1,), _UP_TO_1K),
    "nano-banana": ImageModel(50, PAID_TIERS, _ANY_COUNT, _UP_TO_1K),
    "nano-banana-2": ImageModel(100, PAID_TIERS, _GRID, _UP_TO_4K),
    "nano-banana-2-lite": ImageModel(50, PAID_TIERS, _ANY_COUNT, _UP_TO_1K),
    "nano-banana-2.1": ImageModel(50, PAID_TIERS, _GRID, _UP_TO_4K),
    "nano-banana-pro": ImageModel(150, PAID_TIERS, _GRID, ("1k", "2k", "4k")),
    "qwen-image-2.1": ImageModel(10, TIERS, _ANY_COUNT, _UP_TO_2K),
    "seedream-v4": ImageModel(40, PAID_TIERS, _ANY_COUNT, _UP_TO_4K),
    "seedream-v5-pro": ImageModel(75, PAID_TIERS, _ANY_COUNT, _UP_TO_2K),
    "z-image-turbo": ImageModel(5, TIERS, _ANY_COUNT, _UP_TO_2K),
}
DEPRECATED_IMAGE_MODELS: Mapping[str, str] = {"seedream": "seedream-v4"}
"""Values the enum still has, and the model each now means."""


IMAGE_MODEL_VALUES = (*IMAGE_MODELS, *DEPRECATED_IMAGE_MODELS)
"""Every value ``model`` may take, as the SDK's enum lists them."""


def image_credits(model: str, image_count: int) -> int:
    """What ``image_count`` images of ``model`` cost (its "from" price)."""
    rules = IMAGE_MODELS[DEPRECATED_IMAGE_MODELS.get(model, model)]
    return rules.credits_per_image * image_count


# --- AI voice generator: POST /v1/ai-voice-generator -----------------------------------------

VOICE_CHARACTERS_PER_CREDIT = 10
"""0.1 credit a character, rounded up (see the module's note on the 0.05 in ``generate``)."""
MAX_VOICE_PROMPT = 1000
"""``style.prompt``: "The character limit is 1000 characters"."""


def voice_credits(text: str) -> int:
    """Integer arithmetic on purpose: ``ceil(0.1 * 30)`` is 4 in floating point."""
    return -(-len(text) // VOICE_CHARACTERS_PER_CREDIT)


@cache
def voice_names() -> frozenset[str]:
    """The ``style.voice_name`` enum (voices.json, one name per line, from the SDK)."""
    from importlib import resources  # costs more at start-up than the rest of this module

    text = resources.files(__package__).joinpath("voices.json").read_text(encoding="utf-8")
    return frozenset(json.loads(text))


# --- Video: POST /v1/text-to-video and /v1/image-to-video --------------------------------------

VIDEO_RESOLUTIONS = ("360p", "480p", "720p", "1080p", "4k")
VIDEO_ASPECT_RATIOS = ("16:9", "1:1", "9:16")
VIDEO_ORIENTATIONS = ("landscape", "portrait", "square")
"""Deprecated in favour of ``aspect_ratio``."""
VIDEO_QUALITY_MODES: Mapping[str, str] = {"quick": "720p", "studio": "1080p"}
"""Deprecated ``style.quality_mode``: the resolution each stands for."""
HIGH_QUALITY_RESOLUTIONS: Mapping[bool, str] = {False: "720p", True: "1080p"}
"""Deprecated ``style.high_quality`` (image-to-video): the resolution each stands for."""
DEFAULT_VIDEO_RESOLUTION: Mapping[bool, str] = {False: "480p", True: "720p"}
"""``resolution`` "defaults to 720p on paid tiers and 480p on free tiers" (keyed by paid)."""
DEFAULT_VIDEO_MODEL: Mapping[bool, str] = {False: "ltx-2.5", True: "kling-3.0"}
"""What ``default`` stands for: "for paid tiers, kling-3.0; for free tiers, ltx-2.5"."""
VIDEO_CREDITS_PER_5_SECONDS: Mapping[str, int] = {
    "360p": 120,  # no published price: charged as 480p
    "480p": 120,
    "720p": 300,
    "1080p": 600,
    "4k": 600,  # no published price: charged as 1080p
}
VIDEO_FPS: Mapping[str, int] = {"360p": 24, "480p": 24, "720p": 30, "1080p": 30, "4k": 30}
"""The Node SDK: 480p renders at 24 fps, 720p and 1080p at 30."""
VIDEO_HEIGHTS: Mapping[str, int] = {
    "360p": 360,
    "480p": 480,
    "720p": 720,
    "1080p": 1080,
    "4k": 2160,
}
MAX_VIDEO_REFERENCES = 10


class VideoModel(NamedTuple):
    """One model's documented rules: resolutions, aspect ratios, durations, audio."""

    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    durations: tuple[int, ...]
    """Whole seconds ``end_seconds`` may be."""
    audio: bool
    """Whether ``audio: true`` is supported."""


def _seconds(first: int, last: int) -> tuple[int, ...]:
    return tuple(range(first, last + 1))


_ALL_RATIOS = ("16:9", "1:1", "9:16")
_WIDE_TALL = ("16:9", "9:16")
_VEO_SECONDS = (4, 6, 8, 16, 24, 32, 40, 48, 56)

VIDEO_MODELS: Mapping[str, VideoModel] = {
    "gemini-omni-1.1": VideoModel(
        ("360p", "720p", "1080p", "4k"), _WIDE_TALL, _seconds(3, 10), audio=False
    ),
    "kling-2.6": VideoModel(("720p", "1080p"), _ALL_RATIOS, (5, 10), audio=False),
    "kling-3.0": VideoModel(("720p", "1080p", "4k"), _ALL_RATIOS, _seconds(3, 15), audio=True),
    "ltx-2.5": VideoModel(("480p", "720p", "1080p"), _ALL_RATIOS, _seconds(1, 60), audio=True),
    "minimax-h3": VideoModel(("480p", "720p", "1080p"), _ALL_RATIOS, _seconds(1, 30), audio=True),
    "seedance-1.5": VideoModel(("480p", "720p", "1080p"), _ALL_RATIOS, _seconds(4, 12), audio=True),
    "seedance-2.0": VideoModel(
        ("480p", "720p", "1080p", "4k"), _ALL_RATIOS, _seconds(4, 15), audio=True
    ),
    "seedance-2.0-fast": VideoModel(("480p", "720p"), _ALL_RATIOS, _seconds(4, 15), audio=True),
    "seedance-2.0-mini": VideoModel(("480p", "720p"), _ALL_RATIOS, _seconds(4, 15), audio=True),
    "seedance-2.5": VideoModel(("480p", "720p", "1080p"), _ALL_RATIOS, _seconds(4, 30), audio=True),
    "veo3.1": VideoModel(("720p", "1080p"), _WIDE_TALL, _VEO_SECONDS, audio=True),
    "veo3.1-lite": VideoModel(("720p", "1080p"), _WIDE_TALL, _VEO_SECONDS, audio=True),
    "wan-2.2": VideoModel(
        ("480p", "720p", "1080p"), _ALL_RATIOS, (3, 4, 5, 6, 7, 8, 9, 10, 15), audio=False
    ),
    "wan-3.0": VideoModel(
        ("480p", "720p", "1080p"),
        _ALL_RATIOS,
        (2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30),
        audio=True,
    ),
}
LEGACY_VIDEO_MODELS = (
    "kling-1.6",
    "kling-2.5",
    "kling-2.5-audio",
    "ltx-2",
    "ltx-2.3",
    "seedance",
    "sora-2",
    "veo3.1-audio",
)
"""Values the enum still has but the docs no longer describe: accepted, with no model rules
(any resolution, aspect ratio and duration). A ``-audio`` suffix means ``audio: true``."""


VIDEO_MODEL_VALUES = ("default", *VIDEO_MODELS, *LEGACY_VIDEO_MODELS)
"""Every value ``model`` may take, as the SDK's enum lists them."""


def video_credits(resolution: str, end_seconds: float) -> int:
    """What a clip costs at the published per-5-seconds price, rounded up to a credit."""
    per_5 = VIDEO_CREDITS_PER_5_SECONDS[resolution]
    # Whole thousandths of a second: exact for every duration a model allows, no float drift.
    thousandths = round(end_seconds * 1000)
    return -(-per_5 * thousandths // 5000)


def video_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) of a clip: the resolution names the short side."""
    short = VIDEO_HEIGHTS[resolution]
    long = short * 16 // 9 + (short * 16 // 9) % 2  # even, as encoders want
    if aspect_ratio == "1:1":
        return short, short
    return (long, short) if aspect_ratio == "16:9" else (short, long)
