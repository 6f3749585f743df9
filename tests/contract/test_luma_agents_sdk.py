"""The official `luma-agents` SDK (0.5.0) against the fake's Luma Agents API: every answer parses into the
SDK's typed models, and every refusal becomes the SDK's exception for that status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from luma_agents import (
    APIStatusError,
    AsyncLuma,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    Luma,
    NotFoundError,
    RateLimitError,
    UnprocessableEntityError,
)
from luma_agents.types import Generation

from tests.contract.conftest import TOKEN
from tests.fakes.luma_provider import AGENTS_FAILURE_CODES, FakeLumaProvider

START = "https://images.example.com/start.png"
END = "https://images.example.com/end.png"
VIDEO = {"duration": "5s", "resolution": "720p"}


@pytest.fixture
async def luma(fake) -> AsyncIterator[AsyncLuma]:
    # No retries: each test sees exactly what the fake answered.
    async with AsyncLuma(auth_token=TOKEN, base_url=fake.url_for("luma"), max_retries=0) as client:
        yield client


async def create(luma: AsyncLuma, prompt: str = "a cat surfing", **kwargs) -> Generation:
    kwargs.setdefault("video", VIDEO)
    return await luma.generations.create(prompt=prompt, model="ray-3.2", type="video", **kwargs)


async def completed(luma: AsyncLuma, fake: FakeLumaProvider, prompt: str = "a cat surfing") -> Generation:
    generation = await create(luma, prompt)
    fake.finish(generation.id)
    return await luma.generations.get(generation.id)


async def test_create_answers_201_with_a_queued_typed_generation_and_the_tracing_headers(luma, fake) -> None:
    raw = await luma.generations.with_raw_response.create(
        prompt="a cat surfing",
        model="ray-3.2",
        type="video",
        aspect_ratio="9:16",
        video=VIDEO,
        extra_headers={"X-Request-Id": "trace-42"},
    )
    generation = await raw.parse()

    assert raw.http_response.status_code == 201
    assert isinstance(generation, Generation)
    assert (generation.state, generation.type, generation.model) == ("queued", "video", "ray-3.2")
    assert generation.output == [] and generation.failure_code is None and generation.failure_reason is None
    assert raw.headers["X-Request-Id"] == "trace-42"
    assert raw.headers["X-API-Version"]
    assert int(raw.headers["X-RateLimit-Limit"]) > 0
    assert fake.task(generation.id).aspect_ratio == "9:16"


async def test_the_sdk_sends_a_bearer_token_and_posts_to_generations(luma, fake) -> None:
    await create(luma)
    sent = fake.request_log[-1]
    assert (sent.method, sent.path, sent.provider, sent.kind) == (
        "POST",
        "/agents/v1/generations",
        "luma",
        "create",
    )
    assert sent.authorization == f"Bearer {TOKEN}"
    assert sent.json == {"prompt": "a cat surfing", "model": "ray-3.2", "type": "video", "video": VIDEO}


async def test_a_generation_goes_queued_processing_completed_with_a_video_output(luma, fake) -> None:
    generation = await create(luma)
    fake.mark_running(generation.id)
    running = await luma.generations.get(generation.id)
    fake.finish(generation.id)
    done = await luma.generations.get(generation.id)

    assert running.state == "processing" and running.output == []
    assert done.state == "completed"
    assert done.output is not None and len(done.output) == 1
    assert done.output[0].type == "video" and "X-Amz-Signature=" in done.output[0].url
    assert fake.request_log[-1].kind == "poll"


async def test_timed_mode_completes_on_its_own(http) -> None:
    async with FakeLumaProvider(token=TOKEN, queue_time=0.01, run_time=0.01) as fake:
        async with AsyncLuma(auth_token=TOKEN, base_url=fake.url_for("luma"), max_retries=0) as luma:
            generation = await create(luma, video={"duration": "10s", "resolution": "1080p"})
            await fake.wait_for_state(generation.id, "completed")
            done = await luma.generations.get(generation.id)

            assert done.state == "completed"
            assert fake.task(generation.id).request["video"] == {"duration": "10s", "resolution": "1080p"}
            media = await http.get(done.output[0].url)
            assert media.status_code == 200 and media.headers["content-type"] == "video/mp4"


async def test_every_get_signs_a_fresh_url_and_each_stops_working_after_the_ttl(luma, fake, http) -> None:
    generation = await completed(luma, fake)
    first = generation.output[0].url
    second = (await luma.generations.get(generation.id)).output[0].url
    assert first != second
    assert (await http.get(first)).status_code == 200

    fake.advance_clock(fake.presigned_ttl + 1)
    expired = await http.get(first)
    fresh = (await luma.generations.get(generation.id)).output[0].url

    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text and "Request has expired" in expired.text
    assert (await http.get(fresh)).status_code == 200


async def test_a_tampered_presigned_url_is_refused(luma, fake, http) -> None:
    url = (await completed(luma, fake)).output[0].url
    answer = await http.get(url[:-4] + "0000")
    assert answer.status_code == 403 and "SignatureDoesNotMatch" in answer.text


async def test_start_frame_url_and_end_frame_are_accepted_and_user_id_is_recorded(luma, fake) -> None:
    generation = await create(
        luma, video={**VIDEO, "start_frame": {"url": START}, "end_frame": {"url": END}}, user_id="member-1"
    )
    task = fake.task(generation.id)
    assert generation.state == "queued"
    assert task.user_id == "member-1"
    assert task.request["video"]["start_frame"] == {"url": START}
    assert task.request["video"]["end_frame"] == {"url": END}


@pytest.mark.parametrize("frame", ["start_frame", "end_frame"])
async def test_extending_by_generation_id_names_the_source(luma, fake, frame) -> None:
    source = await completed(luma, fake)
    extension = await create(luma, "and then it jumps", video={**VIDEO, frame: {"generation_id": source.id}})
    assert fake.task(extension.id).kind == "extend"
    assert fake.task(extension.id).extends == source.id


async def test_extending_an_unknown_or_unfinished_generation_is_refused(luma, fake) -> None:
    with pytest.raises(NotFoundError) as unknown:
        await create(
            luma, video={**VIDEO, "start_frame": {"generation_id": "00000000-0000-4000-8000-000000000000"}}
        )
    queued = await create(luma)
    with pytest.raises(UnprocessableEntityError) as unfinished:
        await create(luma, video={**VIDEO, "start_frame": {"generation_id": queued.id}})

    assert "not found" in unknown.value.body["detail"]
    assert "not completed" in unfinished.value.body["detail"]


async def test_a_generation_made_with_another_token_cannot_be_extended(luma, fake) -> None:
    source = await completed(luma, fake)
    fake.set_token("luma-rotated-key")
    async with AsyncLuma(
        auth_token="luma-rotated-key", base_url=fake.url_for("luma"), max_retries=0
    ) as other:
        with pytest.raises(NotFoundError):
            await create(other, video={**VIDEO, "start_frame": {"generation_id": source.id}})


@pytest.mark.parametrize(
    ("prompt", "code"), [("a cat [fail]", "generation_failed"), ("a cat [moderate]", "content_moderated")]
)
async def test_prompt_markers_fail_with_their_failure_code(prompt, code) -> None:
    async with FakeLumaProvider(token=TOKEN, queue_time=0.0, run_time=0.0) as fake:
        async with AsyncLuma(auth_token=TOKEN, base_url=fake.url_for("luma"), max_retries=0) as luma:
            generation = await create(luma, prompt)
            await fake.wait_for_state(generation.id, "failed")
            failed = await luma.generations.get(generation.id)
    assert (failed.state, failed.failure_code) == ("failed", code)
    assert failed.failure_reason and failed.output == []


@pytest.mark.parametrize("code", AGENTS_FAILURE_CODES)
async def test_a_test_can_fail_a_generation_with_any_documented_code(luma, fake, code) -> None:
    generation = await create(luma)
    fake.fail(generation.id, code=code)
    failed = await luma.generations.get(generation.id)
    assert (failed.state, failed.failure_code) == ("failed", code)


async def test_unknown_generation_is_not_found_with_a_detail_and_the_tracing_headers(luma) -> None:
    with pytest.raises(NotFoundError) as info:
        await luma.generations.get("00000000-0000-4000-8000-000000000000")
    assert info.value.body == {"detail": "Generation not found"}
    assert info.value.response.headers["X-Request-Id"] and info.value.response.headers["X-API-Version"]


async def test_a_wrong_key_is_an_authentication_error(fake) -> None:
    async with AsyncLuma(auth_token="luma-wrong", base_url=fake.url_for("luma"), max_retries=0) as luma:
        with pytest.raises(AuthenticationError) as info:
            await create(luma)
    assert info.value.status_code == 401 and "detail" in info.value.body


async def test_insufficient_balance_is_a_plain_status_error_402(luma, fake) -> None:
    fake.set_balance_exhausted()
    with pytest.raises(APIStatusError) as info:
        await create(luma)
    # luma-agents has no class for 402: it raises the base APIStatusError.
    assert type(info.value) is APIStatusError
    assert info.value.status_code == 402 and info.value.body == {"detail": "Insufficient balance"}
    assert fake.tasks == {}


async def test_a_frame_that_is_too_large_is_a_413(luma, fake) -> None:
    with pytest.raises(APIStatusError) as info:
        await create(luma, video={**VIDEO, "start_frame": {"url": "https://img.example.com/too-large.png"}})
    assert type(info.value) is APIStatusError and info.value.status_code == 413


@pytest.mark.parametrize(
    "video",
    [
        {"duration": "10s", "loop": True},
        {"duration": "5s", "loop": True, "end_frame": {"url": END}},
        {"start_frame": {"url": START, "generation_id": "0f0e"}},
        {"start_frame": {}},
        {"start_frame": {"data": "aGVsbG8="}},
    ],
)
async def test_rejected_combinations_are_unprocessable_with_a_string_detail(luma, fake, video) -> None:
    with pytest.raises(UnprocessableEntityError) as info:
        await create(luma, video=video)
    assert isinstance(info.value.body["detail"], str)
    assert fake.tasks == {}


@pytest.mark.parametrize(
    ("kwargs", "loc"),
    [
        ({"aspect_ratio": "9:21"}, ["body", "aspect_ratio"]),
        ({"video": {"resolution": "4k"}}, ["body", "video", "resolution"]),
        ({"video": {"duration": "9s"}}, ["body", "video", "duration"]),
    ],
)
async def test_values_outside_the_schema_are_422_with_a_fastapi_list_detail(luma, kwargs, loc) -> None:
    with pytest.raises(UnprocessableEntityError) as info:
        await create(luma, **kwargs)
    [error] = info.value.body["detail"]
    assert error["loc"] == loc and error["type"] == "literal_error"


async def test_a_missing_or_empty_prompt_is_a_schema_error(luma) -> None:
    with pytest.raises(UnprocessableEntityError) as missing:
        await luma.generations.create(model="ray-3.2", type="video", prompt=None)  # type: ignore[arg-type]
    with pytest.raises(UnprocessableEntityError) as empty:
        await luma.generations.create(model="ray-3.2", type="video", prompt="")
    assert missing.value.body["detail"][0]["loc"] == ["body", "prompt"]
    assert empty.value.body["detail"][0]["type"] == "string_too_short"


@pytest.mark.parametrize(
    "kwargs",
    [{"aspect_ratio": "3:2"}, {"model": "uni-1"}, {"type": "image"}],
)
async def test_schema_valid_values_the_video_model_refuses_are_bad_requests(luma, fake, kwargs) -> None:
    args = {"prompt": "a cat", "model": "ray-3.2", "type": "video", **kwargs}
    with pytest.raises(BadRequestError) as info:
        await luma.generations.create(**args)
    assert isinstance(info.value.body["detail"], str)
    assert fake.tasks == {}


async def test_the_per_minute_limit_is_a_429_with_retry_after_and_gets_are_not_limited(fake) -> None:
    fake.rate_limit_per_minute = 2
    async with AsyncLuma(auth_token=TOKEN, base_url=fake.url_for("luma"), max_retries=0) as luma:
        first = await create(luma)
        await create(luma)
        with pytest.raises(RateLimitError) as info:
            await create(luma)
        for _ in range(5):
            assert (await luma.generations.get(first.id)).state == "queued"

        assert info.value.body == {"detail": "Rate limit exceeded"}
        assert 1 <= int(info.value.response.headers["Retry-After"]) <= 60
        fake.advance_clock(60)
        assert (await create(luma)).state == "queued"


async def test_the_concurrency_limit_is_a_429_with_retry_after(fake) -> None:
    fake.concurrency_limit = 1
    fake.concurrency_retry_after = 7
    async with AsyncLuma(auth_token=TOKEN, base_url=fake.url_for("luma"), max_retries=0) as luma:
        first = await create(luma)
        with pytest.raises(RateLimitError) as info:
            await create(luma)
        fake.finish(first.id)
        assert (await create(luma)).state == "queued"
    assert info.value.body == {"detail": "Too many concurrent jobs"}
    assert info.value.response.headers["Retry-After"] == "7"


async def test_the_sdk_waits_the_retry_after_of_a_429_before_retrying(fake) -> None:
    fake.concurrency_limit = 1
    fake.concurrency_retry_after = 0.2
    async with AsyncLuma(auth_token=TOKEN, base_url=fake.url_for("luma"), max_retries=1) as luma:
        first = await create(luma)
        second = asyncio.create_task(create(luma))
        await fake.wait_for_requests(2, "create")
        fake.finish(first.id)  # frees the slot while the SDK waits out Retry-After
        created = await second

    creates = [r for r in fake.request_log if r.kind == "create"]
    assert created.state == "queued" and len(creates) == 3
    assert creates[2].at - creates[1].at >= 0.2
    assert creates[2].headers["x-stainless-retry-count"] == "1"


async def test_the_sync_client_works_from_a_thread(fake) -> None:
    client = Luma(auth_token=TOKEN, base_url=fake.url_for("luma"), max_retries=0)
    try:
        generation = await asyncio.to_thread(
            client.generations.create, prompt="a cat", model="ray-3.2", type="video", video=VIDEO
        )
        fake.finish(generation.id)
        done = await asyncio.to_thread(client.generations.get, generation.id)
    finally:
        client.close()
    assert done.state == "completed" and done.output[0].url.startswith(fake.base_url + "/agents-cdn/")


async def test_an_injected_fault_carries_the_tracing_headers_too(luma, fake) -> None:
    fake.inject(503, path="poll")
    with pytest.raises(InternalServerError) as info:
        await luma.generations.get("whatever")
    assert info.value.response.status_code == 503
    assert info.value.response.headers["X-API-Version"]
