"""mhw's copy of the real API's values (magichour/api_reference.py) against the installed SDK.

The official SDK (``magic-hour``, a dev dependency) is generated from Magic Hour's OpenAPI
document: its ``Literal`` types are the API's enums and its docstrings carry the per-model rules.
Each test reads one of them from the SDK itself, so upgrading the SDK to a release that adds a
model, a voice or a resolution fails here until api_reference.py (and so ``mhw emulate``) agrees.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from magic_hour.resources.v1.ai_image_generator import client as image_client
from magic_hour.resources.v1.ai_voice_generator import client as voice_client
from magic_hour.types import models, params

from mh_webhook_cli.magichour import api_reference as ref


def literal_values(typed_dict: Any, key: str) -> set[str]:
    """The values of a ``Literal`` field of one of the SDK's TypedDicts (or models)."""
    hint = typing.get_type_hints(typed_dict)[key]
    found: set[str] = set()

    def walk(annotation: Any) -> None:
        if typing.get_origin(annotation) is typing.Literal:
            found.update(typing.get_args(annotation))
        for argument in typing.get_args(annotation):
            walk(argument)

    walk(hint)
    assert found, f"{typed_dict.__name__}.{key} is not a Literal any more"
    return found


def source(module: ModuleType) -> str:
    return inspect.getsource(module)


def bullets(text: str) -> Iterator[tuple[str, str]]:
    """``* **`name`**: rest`` lines of a docstring: (name, rest)."""
    for match in re.finditer(r"\* \*\*`([^`]+)`\*\*: (.+)", text):
        yield match.group(1), match.group(2).strip()


def field_doc(module: ModuleType, field: str) -> str:
    """The attribute docstring after ``field:`` in a generated TypedDict's source."""
    text = source(module)
    match = re.search(rf"\n    {field}: .*?\n    \"\"\"(.*?)\"\"\"", text, re.DOTALL)
    assert match, f"no docstring for {field} in {module.__name__}"
    return match.group(1)


def test_image_enums_are_the_sdks() -> None:
    body = params.V1AiImageGeneratorCreateBody
    style = params.V1AiImageGeneratorCreateBodyStyle
    assert literal_values(body, "aspect_ratio") == set(ref.IMAGE_ASPECT_RATIOS)
    assert literal_values(body, "orientation") == set(ref.IMAGE_ORIENTATIONS)
    assert literal_values(body, "resolution") == set(ref.IMAGE_RESOLUTIONS)
    assert literal_values(body, "model") == set(ref.IMAGE_MODEL_VALUES)
    assert literal_values(style, "tool") == set(ref.IMAGE_TOOLS)
    assert literal_values(style, "quality_mode") == set(ref.IMAGE_QUALITY_MODES)


def test_image_model_costs_tiers_counts_and_resolutions_are_the_sdks() -> None:
    from magic_hour.types.params import v1_ai_image_generator_create_body as module

    doc = field_doc(module, "model")
    documented = {}
    pattern = (
        r"- `([^`]+)` - from (\d+) credits/image\n\s+- Supported resolutions: (.+)\n"
        r"\s+- Available for tiers: (.+)\n\s+- Image count allowed: (.+)"
    )
    for name, credits, resolutions, tiers, counts in re.findall(pattern, doc):
        documented[name] = ref.ImageModel(
            int(credits),
            tuple(tiers.split(", ")),
            tuple(int(count) for count in counts.split(", ")),
            tuple(resolutions.split(", ")),
        )
    ours = {name: rules for name, rules in ref.IMAGE_MODELS.items() if name != "default"}
    assert documented == ours
    assert re.search(r"- `seedream` - Use `seedream-v4` instead", doc)
    assert ref.DEPRECATED_IMAGE_MODELS == {"seedream": "seedream-v4"}
    quality = field_doc(params.v1_ai_image_generator_create_body_style, "quality_mode")
    for mode, model in ref.IMAGE_QUALITY_MODES.items():
        assert f"`{mode}` → `{model}`" in quality
    # "default" is priced by generate()'s "Each image costs 5 credits".
    price = re.search(r"Each image costs (\d+) credits", source(image_client))
    assert price and int(price.group(1)) == ref.IMAGE_MODELS["default"].credits_per_image


def test_voice_names_limit_and_price_are_the_sdks() -> None:
    style = params.V1AiVoiceGeneratorCreateBodyStyle
    assert literal_values(style, "voice_name") == ref.voice_names()
    assert len(ref.voice_names()) > 1000
    limit = re.search(
        r"character limit is (\d+) characters",
        field_doc(params.v1_ai_voice_generator_create_body_style, "prompt"),
    )
    assert limit and int(limit.group(1)) == ref.MAX_VOICE_PROMPT
    # The generated create() (the API's own text) states the price mhw charges.
    create = inspect.getsource(voice_client.AiVoiceGeneratorClient.create)
    price = re.search(r"Each character costs ([\d.]+) credits", create)
    assert price and float(price.group(1)) == 1 / ref.VOICE_CHARACTERS_PER_CREDIT


@pytest.mark.parametrize(
    ("body", "style"),
    [
        (params.V1TextToVideoCreateBody, params.V1TextToVideoCreateBodyStyle),
        (params.V1ImageToVideoCreateBody, params.V1ImageToVideoCreateBodyStyle),
    ],
)
def test_video_enums_are_the_sdks(body: Any, style: Any) -> None:
    assert literal_values(body, "model") == set(ref.VIDEO_MODEL_VALUES)
    assert literal_values(body, "resolution") == set(ref.VIDEO_RESOLUTIONS)
    assert literal_values(style, "quality_mode") == set(ref.VIDEO_QUALITY_MODES)
    if body is params.V1TextToVideoCreateBody:  # image-to-video's frame is the image's
        assert literal_values(body, "aspect_ratio") == set(ref.VIDEO_ASPECT_RATIOS)
        assert literal_values(body, "orientation") == set(ref.VIDEO_ORIENTATIONS)
    else:
        assert not {"aspect_ratio", "orientation"} & set(typing.get_type_hints(body))


@pytest.mark.parametrize(
    "module", [params.v1_text_to_video_create_body, params.v1_image_to_video_create_body]
)
def test_video_model_rules_are_the_sdks(module: ModuleType) -> None:
    resolutions = {
        name: tuple(re.findall(r"\d+p|4k", rest))
        for name, rest in bullets(field_doc(module, "resolution"))
    }
    durations: dict[str, tuple[int, ...]] = {}
    for name, rest in bullets(field_doc(module, "end_seconds")):
        span = re.fullmatch(r"any integer from (\d+) to (\d+)", rest)
        durations[name] = (
            tuple(range(int(span.group(1)), int(span.group(2)) + 1))
            if span
            else tuple(int(value) for value in rest.split(", "))
        )
    audio = {
        name: not rest.startswith("Not supported")
        for name, rest in bullets(field_doc(module, "audio"))
    }
    ours = ref.VIDEO_MODELS
    assert resolutions == {name: rules.resolutions for name, rules in ours.items()}
    assert durations == {name: rules.durations for name, rules in ours.items()}
    assert audio == {name: rules.audio for name, rules in ours.items()}
    if module is params.v1_text_to_video_create_body:  # image-to-video follows the image
        ratios = {
            name: tuple(re.findall(r"\d+:\d+", rest))
            for name, rest in bullets(field_doc(module, "aspect_ratio"))
        }
        assert {name: set(values) for name, values in ratios.items()} == {
            name: set(rules.aspect_ratios) for name, rules in ours.items()
        }
    model_doc = field_doc(module, "model")
    assert "For paid tiers, defaults to `kling-3.0`. For free tiers, it defaults to `ltx-2.5`" in (
        model_doc
    )
    assert ref.DEFAULT_VIDEO_MODEL == {False: "ltx-2.5", True: "kling-3.0"}
    assert "Defaults to `720p` on paid tiers and `480p` on free tiers" in field_doc(
        module, "resolution"
    )


def test_tiers_and_statuses_are_the_sdks() -> None:
    assert literal_values(models.V1AccountListResponse, "tier") == set(ref.TIERS)
    for model in (
        models.V1ImageProjectsGetResponse,
        models.V1VideoProjectsGetResponse,
        models.V1AudioProjectsGetResponse,
    ):
        assert literal_values(model, "status") >= {"queued", "rendering", "complete", "error"}


def test_video_prices_and_sizes() -> None:
    assert ref.video_credits("720p", 5) == 300  # the Node SDK's "300 credits per 5 seconds"
    assert ref.video_credits("480p", 10) == 240
    assert ref.video_credits("1080p", 3) == 360
    assert ref.video_credits("480p", 1) == 24
    assert ref.video_size("720p", "16:9") == (1280, 720)
    assert ref.video_size("480p", "9:16") == (480, 854)
    assert ref.video_size("1080p", "1:1") == (1080, 1080)
    assert ref.image_credits("seedream", 2) == 80
    assert ref.voice_credits("x" * 30) == 3
