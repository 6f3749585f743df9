"""The official `lumaai` SDK (1.21.0) against the fake's Dream Machine API: creates through both create
methods and both paths, typed Generation objects through a whole life, credits, ping, the SDK's exception
for each refusal, and callbacks that parse as the SDK's Generation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC

import httpx
import pytest
from aiohttp import web
from lumaai import (
    APIStatusError,
    AsyncLumaAI,
    AuthenticationError,
    BadRequestError,
    LumaAI,
    NotFoundError,
    RateLimitError,
)
from lumaai.types import CreditGetResponse, Generation
from lumaai.types.generation import (
    RequestGenerationRequest,
    RequestGenerationRequestKeyframesFrame0GenerationReference,
    RequestGenerationRequestKeyframesFrame1ImageReference,
)

from tests.contract.conftest import TOKEN
from tests.fakes.luma_provider import FakeLumaProvider

IMAGE = "https://images.example.com/start.png"


@pytest.fixture
async def lumaai(fake) -> AsyncIterator[AsyncLumaAI]:
    async with AsyncLumaAI(auth_token=TOKEN, base_url=fake.url_for("dream-machine"), max_retries=0) as client:
        yield client


async def completed(lumaai: AsyncLumaAI, fake: FakeLumaProvider, prompt: str = "a cat surfing") -> Generation:
    generation = await lumaai.generations.create(model="ray-2", prompt=prompt)
    fake.finish(generation.id)
    return await lumaai.generations.get(generation.id)


async def test_generations_create_posts_to_generations_video_with_a_bearer_token(lumaai, fake) -> None:
    generation = await lumaai.generations.create(
        model="ray-2",
        prompt="a cat surfing",
        aspect_ratio="9:21",
        resolution="720p",
        duration="9s",
        loop=True,
    )
    sent = fake.request_log[-1]

    assert (sent.method, sent.path, sent.kind, sent.provider) == (
        "POST",
        "/dream-machine/v1/generations/video",
        "create",
        "dream-machine",
    )
    assert sent.authorization == f"Bearer {TOKEN}"
    assert isinstance(generation, Generation)
    assert (generation.state, generation.generation_type, generation.model) == ("queued", "video", "ray-2")
    assert generation.assets is None and generation.failure_reason is None
    assert generation.created_at is not None and generation.created_at.tzinfo is not None
    assert isinstance(generation.request, RequestGenerationRequest)
    assert (generation.request.aspect_ratio, generation.request.duration) == ("9:21", "9s")


async def test_generations_video_create_and_the_documented_path_make_the_same_object(lumaai, fake) -> None:
    via_video = await lumaai.generations.video.create(model="ray-flash-2", prompt="a dog running")
    # The SDK's own request path (auth, headers) with the raw answer back, parsed by the SDK's model.
    raw = await lumaai.post(
        "/generations", cast_to=httpx.Response, body={"model": "ray-flash-2", "prompt": "a dog running"}
    )
    via_documented = Generation.model_validate(raw.json())

    assert raw.status_code == 201
    assert [r.path for r in fake.request_log if r.kind == "create"] == [
        "/dream-machine/v1/generations/video",
        "/dream-machine/v1/generations",
    ]
    for generation in (via_video, via_documented):
        assert (generation.state, generation.model, generation.generation_type) == (
            "queued",
            "ray-flash-2",
            "video",
        )
        assert generation.request.generation_type == "video"


async def test_keyframes_of_both_types_are_accepted_and_echoed_typed(lumaai, fake) -> None:
    source = await completed(lumaai, fake)
    generation = await lumaai.generations.create(
        model="ray-2",
        prompt="it keeps surfing",
        keyframes={
            "frame0": {"type": "generation", "id": source.id},
            "frame1": {"type": "image", "url": IMAGE},
        },
    )
    frames = generation.request.keyframes

    assert isinstance(frames.frame0, RequestGenerationRequestKeyframesFrame0GenerationReference)
    assert isinstance(frames.frame1, RequestGenerationRequestKeyframesFrame1ImageReference)
    assert (frames.frame0.id, frames.frame1.url) == (source.id, IMAGE)
    assert fake.task(generation.id).extends == source.id


async def test_extending_backwards_by_frame1_generation_names_the_source(lumaai, fake) -> None:
    source = await completed(lumaai, fake)
    generation = await lumaai.generations.create(
        model="ray-2",
        prompt="what came before",
        keyframes={"frame1": {"type": "generation", "id": source.id}},
    )
    assert fake.task(generation.id).kind == "extend" and fake.task(generation.id).extends == source.id


async def test_a_generation_goes_queued_dreaming_completed_with_permanent_assets(lumaai, fake, http) -> None:
    generation = await lumaai.generations.create(model="ray-2", prompt="a cat surfing")
    fake.mark_running(generation.id)
    dreaming = await lumaai.generations.get(generation.id)
    fake.finish(generation.id)
    done = await lumaai.generations.get(generation.id)

    assert dreaming.state == "dreaming" and dreaming.assets is None
    assert done.state == "completed" and done.assets is not None
    video = await http.get(done.assets.video)
    image = await http.get(done.assets.image)
    assert (video.status_code, video.headers["content-type"]) == (200, "video/mp4")
    assert (image.status_code, image.headers["content-type"]) == (200, "image/jpeg")
    assert (await lumaai.generations.get(generation.id)).assets.video == done.assets.video  # permanent


@pytest.mark.parametrize(
    ("prompt", "reason"),
    [("a cat [fail]", "Generation failed"), ("a cat [moderate]", "Advanced prompt moderation failed")],
)
async def test_prompt_markers_fail_with_a_failure_reason(prompt, reason) -> None:
    async with FakeLumaProvider(token=TOKEN, queue_time=0.0, run_time=0.0) as fake:
        async with AsyncLumaAI(
            auth_token=TOKEN, base_url=fake.url_for("dream-machine"), max_retries=0
        ) as client:
            generation = await client.generations.create(model="ray-2", prompt=prompt)
            await fake.wait_for_state(generation.id, "failed")
            failed = await client.generations.get(generation.id)
    assert (failed.state, failed.failure_reason, failed.assets) == ("failed", reason, None)


async def test_credits_and_ping(lumaai, fake) -> None:
    credits = await lumaai.credits.get()
    pong = await lumaai.ping.check()
    assert isinstance(credits, CreditGetResponse) and credits.credit_balance == fake.credit_balance
    assert pong.message


async def test_credits_are_charged_at_create_and_refunded_on_failure(lumaai, fake) -> None:
    fake.credit_balance, fake.dm_generation_cost = 100.0, 40.0
    kept = await lumaai.generations.create(model="ray-2", prompt="a cat surfing")
    refunded = await lumaai.generations.create(model="ray-2", prompt="a dog surfing")
    assert (await lumaai.credits.get()).credit_balance == 20.0
    with pytest.raises(APIStatusError) as info:
        await lumaai.generations.create(model="ray-2", prompt="a third")
    fake.fail(refunded.id)
    fake.finish(kept.id)

    assert type(info.value) is APIStatusError and info.value.status_code == 402
    assert (await lumaai.credits.get()).credit_balance == 60.0


async def test_a_used_up_balance_is_402_and_zero_credits(lumaai, fake) -> None:
    fake.set_balance_exhausted()
    with pytest.raises(APIStatusError) as info:
        await lumaai.generations.create(model="ray-2", prompt="a cat surfing")
    assert info.value.status_code == 402 and "detail" in info.value.body
    assert (await lumaai.credits.get()).credit_balance == 0


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({}, "Prompt is required"),
        ({"prompt": "ab"}, "Prompt is too short, minimum length is 3 characters"),
        ({"prompt": "x" * 5001}, "Prompt is too long, maximum length is 5000 characters"),
        (
            {"prompt": "a cat", "loop": True, "keyframes": {"frame1": {"type": "image", "url": IMAGE}}},
            "Loop is not supported for end frame",
        ),
        ({"prompt": "a cat", "keyframes": {}}, "No keyframes provided"),
        ({"prompt": "a cat", "generation_type": "image"}, "Unknown request type"),
    ],
)
async def test_refusals_are_bad_requests_in_luma_words(lumaai, fake, kwargs, detail) -> None:
    with pytest.raises(BadRequestError) as info:
        await lumaai.generations.create(model="ray-2", **kwargs)
    assert info.value.body == {"detail": detail}
    assert fake.tasks == {}


async def test_a_keyframe_generation_must_be_a_completed_one_of_the_same_token(lumaai, fake) -> None:
    queued = await lumaai.generations.create(model="ray-2", prompt="a cat surfing")
    with pytest.raises(BadRequestError) as unfinished:
        await lumaai.generations.create(
            model="ray-2", prompt="more", keyframes={"frame0": {"type": "generation", "id": queued.id}}
        )
    fake.finish(queued.id)
    fake.set_token("luma-rotated-key")
    async with AsyncLumaAI(
        auth_token="luma-rotated-key", base_url=fake.url_for("dream-machine"), max_retries=0
    ) as c:
        with pytest.raises(BadRequestError) as other_token:
            await c.generations.create(
                model="ray-2", prompt="more", keyframes={"frame0": {"type": "generation", "id": queued.id}}
            )
    assert "not completed" in unfinished.value.body["detail"]
    assert "not found" in other_token.value.body["detail"]


async def test_a_wrong_key_is_an_authentication_error(fake) -> None:
    async with AsyncLumaAI(
        auth_token="luma-wrong", base_url=fake.url_for("dream-machine"), max_retries=0
    ) as c:
        with pytest.raises(AuthenticationError) as info:
            await c.generations.get("00000000-0000-4000-8000-000000000000")
    assert info.value.status_code == 401 and "detail" in info.value.body


async def test_an_unknown_generation_is_not_found(lumaai) -> None:
    with pytest.raises(NotFoundError) as info:
        await lumaai.generations.get("00000000-0000-4000-8000-000000000000")
    assert info.value.body == {"detail": "Generation not found"}


async def test_too_many_unfinished_generations_is_a_rate_limit_error(lumaai, fake) -> None:
    fake.concurrency_limit = 1
    first = await lumaai.generations.create(model="ray-2", prompt="a cat surfing")
    with pytest.raises(RateLimitError) as info:
        await lumaai.generations.create(model="ray-2", prompt="a dog surfing")
    fake.finish(first.id)
    assert (await lumaai.generations.create(model="ray-2", prompt="a dog surfing")).state == "queued"
    assert info.value.status_code == 429 and "detail" in info.value.body


async def test_the_sync_client_works_from_a_thread(fake) -> None:
    client = LumaAI(auth_token=TOKEN, base_url=fake.url_for("dream-machine"), max_retries=0)
    try:
        generation = await asyncio.to_thread(client.generations.create, model="ray-2", prompt="a cat surfing")
        fake.finish(generation.id)
        done = await asyncio.to_thread(client.generations.get, generation.id)
    finally:
        client.close()
    assert done.state == "completed" and done.assets.video.startswith(fake.base_url + "/cdn/dream-machine/")


# ---- callbacks ---------------------------------------------------------------------------------------------


class Receiver:
    """A callback endpoint that answers `statuses` in turn (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_a_callback_with_the_generation_arrives_on_every_state_change(lumaai, fake) -> None:
    async with Receiver() as receiver:
        generation = await lumaai.generations.create(
            model="ray-2", prompt="a cat surfing", callback_url=receiver.url
        )
        fake.mark_running(generation.id)
        fake.finish(generation.id)
        await fake.wait_for_callbacks(2)

    parsed = [Generation.model_validate(body) for body in receiver.bodies]
    assert [g.state for g in parsed] == ["dreaming", "completed"]
    assert all(g.id == generation.id for g in parsed)
    assert parsed[1].assets.video and parsed[1].created_at.tzinfo == UTC
    assert [c.status for c in fake.callbacks] == [200, 200]


async def test_a_failed_generation_calls_back_with_its_reason(lumaai, fake) -> None:
    async with Receiver() as receiver:
        generation = await lumaai.generations.create(
            model="ray-2", prompt="a cat surfing", callback_url=receiver.url
        )
        fake.fail(generation.id, "Frame moderation failed")
        await fake.wait_for_callbacks(1)
    failed = Generation.model_validate(receiver.bodies[0])
    assert (failed.state, failed.failure_reason) == ("failed", "Frame moderation failed")


async def test_a_callback_answered_non_200_is_retried_100ms_apart(lumaai, fake) -> None:
    async with Receiver([500, 503]) as receiver:
        generation = await lumaai.generations.create(
            model="ray-2", prompt="a cat surfing", callback_url=receiver.url
        )
        started = asyncio.get_running_loop().time()
        fake.finish(generation.id)
        await fake.wait_for_callbacks(3)
        elapsed = asyncio.get_running_loop().time() - started

    assert [c.status for c in fake.callbacks] == [500, 503, 200]
    assert elapsed >= 0.2
    assert receiver.bodies[0] == receiver.bodies[2]


async def test_a_callback_is_given_up_after_three_retries(lumaai, fake) -> None:
    async with Receiver([500] * 10) as receiver:
        generation = await lumaai.generations.create(
            model="ray-2", prompt="a cat surfing", callback_url=receiver.url
        )
        fake.dm_callback_retry_delay = 0.01
        fake.finish(generation.id)
        await fake.drain_callbacks()
    assert [c.status for c in fake.callbacks] == [500] * 4 and len(receiver.bodies) == 4
