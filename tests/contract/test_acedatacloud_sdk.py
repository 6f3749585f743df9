"""The official `acedatacloud` SDK (2026.10.20.0) against the fake's AceDataCloud routes: `client.luma.generate`
submits with `async: true`, its task handle polls `/luma/tasks` to a completed or failed record, and the
platform's error bodies become the SDK's exception classes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from acedatacloud import AceDataCloud, AsyncAceDataCloud
from acedatacloud._runtime.errors import (
    AuthenticationError,
    InsufficientBalanceError,
    ModerationError,
    RateLimitError,
    ValidationError,
)
from acedatacloud._runtime.tasks import failure_reason, task_status

from tests.contract.conftest import TOKEN
from tests.fakes.luma_provider import ACE_API_ID, FakeLumaProvider

START = "https://images.example.com/start.png"


@pytest.fixture
async def ace(fake) -> AsyncIterator[AsyncAceDataCloud]:
    async with AsyncAceDataCloud(
        api_token=TOKEN, base_url=fake.url_for("acedatacloud"), max_retries=0
    ) as client:
        yield client


async def test_generate_sends_async_true_with_the_sdk_defaults_and_gets_a_task_id(ace, fake) -> None:
    handle = await ace.luma.generate(prompt="a cat surfing", aspect_ratio="16:9")
    sent = fake.request_log[-1]

    assert (sent.method, sent.path, sent.kind, sent.provider) == (
        "POST",
        "/luma/videos",
        "create",
        "acedatacloud",
    )
    assert sent.authorization == f"Bearer {TOKEN}"
    assert sent.json == {
        "loop": False,
        "action": "generate",
        "prompt": "a cat surfing",
        "timeout": 300,
        "enhancement": True,
        "aspect_ratio": "16:9",
        "async": True,
    }
    assert handle.id in fake.tasks and not handle.done


async def test_the_handle_polls_luma_tasks_until_the_record_is_completed(ace, fake, http) -> None:
    handle = await ace.luma.generate(prompt="a cat surfing")
    queued = await handle.get()
    fake.mark_running(handle.id)
    running = await handle.get()
    fake.finish(handle.id)
    record = await handle.wait(poll_interval=0.01)
    polls = [r for r in fake.request_log if r.kind == "poll"]

    assert task_status(queued) == "" and "response" not in queued
    assert task_status(running) == "" and running["response"]["state"] == "processing"
    assert task_status(record) == "succeeded" and handle.done
    assert all(p.path == "/luma/tasks" and p.json == {"id": handle.id, "action": "retrieve"} for p in polls)
    assert record["id"] == handle.id and record["api_id"] == ACE_API_ID
    assert record["response"]["state"] == "completed" and record["response"]["success"] is True
    assert handle.urls()[0] == fake.task(handle.id).video_url
    assert (await http.get(handle.urls()[0])).status_code == 200


async def test_timed_mode_reaches_a_completed_record_with_wait() -> None:
    async with FakeLumaProvider(token=TOKEN, queue_time=0.01, run_time=0.01) as fake:
        async with AsyncAceDataCloud(api_token=TOKEN, base_url=fake.base_url, max_retries=0) as ace:
            handle = await ace.luma.generate(prompt="a cat surfing", wait=True, poll_interval=0.01)
            assert fake.task(handle.id).state == "completed"
    record = await handle.result()
    assert task_status(record) == "succeeded"
    assert record["finished_at"] >= record["created_at"] and record["elapsed"] >= 0


async def test_the_sdk_takes_a_queued_record_whose_request_has_an_image_url_for_done(ace, fake) -> None:
    # Not a fake bug: the SDK collects "artifact" URLs from the whole record while `response` is absent, so
    # `start_image_url` in `request` reads as a result. A client must decide from `response` alone.
    handle = await ace.luma.generate(prompt="a cat surfing", start_image_url=START)
    queued = await handle.get()
    assert "response" not in queued and fake.task(handle.id).state == "queued"
    assert task_status(queued) == "succeeded" and handle.urls() == [START]


async def test_a_failed_record_ends_the_wait_as_failed_with_its_message(ace, fake) -> None:
    handle = await ace.luma.generate(prompt="a cat surfing")
    fake.fail(handle.id, "Upstream refused the frame")
    record = await handle.wait(poll_interval=0.01)
    assert task_status(record) == "failed" and "state" not in record["response"]
    assert failure_reason(record) == "Upstream refused the frame"


async def test_extend_by_video_id_makes_an_extend_task(ace, fake) -> None:
    source = await ace.luma.generate(prompt="a cat surfing")
    fake.finish(source.id)
    record = await source.wait(poll_interval=0.01)
    handle = await ace.luma.generate(action="extend", video_id=record["response"]["video_id"], prompt="more")
    assert fake.task(handle.id).kind == "extend" and fake.task(handle.id).extends == source.id


async def test_moderation_at_create_is_a_moderation_error(ace, fake) -> None:
    with pytest.raises(ModerationError) as info:
        await ace.luma.generate(prompt="a cat [moderate]")
    assert (info.value.status_code, info.value.code) == (403, "forbidden") and info.value.trace_id


async def test_a_used_up_balance_is_insufficient_balance(ace, fake) -> None:
    fake.set_balance_exhausted()
    with pytest.raises(InsufficientBalanceError) as info:
        await ace.luma.generate(prompt="a cat surfing")
    assert info.value.code == "used_up"


async def test_a_wrong_token_is_an_authentication_error(fake) -> None:
    async with AsyncAceDataCloud(api_token="wrong", base_url=fake.base_url, max_retries=0) as ace:
        with pytest.raises(AuthenticationError) as info:
            await ace.luma.generate(prompt="a cat surfing")
    assert (info.value.status_code, info.value.code) == (401, "invalid_token")


async def test_a_missing_prompt_is_a_validation_error(ace) -> None:
    with pytest.raises(ValidationError) as info:
        await ace.luma.generate()
    assert (info.value.status_code, info.value.code) == (400, "bad_request")


async def test_too_many_tasks_in_flight_is_a_rate_limit_error(ace, fake) -> None:
    fake.concurrency_limit = 1
    await ace.luma.generate(prompt="a cat surfing")
    with pytest.raises(RateLimitError) as info:
        await ace.luma.generate(prompt="a dog surfing")
    assert (info.value.status_code, info.value.code) == (429, "too_many_requests")


async def test_the_sync_client_works_from_a_thread(fake) -> None:
    client = AceDataCloud(api_token=TOKEN, base_url=fake.base_url, max_retries=0)
    try:
        handle = await asyncio.to_thread(client.luma.generate, prompt="a cat surfing")
        fake.finish(handle.id)
        record = await asyncio.to_thread(handle.wait, poll_interval=0.01)
    finally:
        client.close()
    assert task_status(record) == "succeeded"
