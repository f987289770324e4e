"""The official `openai` SDK against the simulator: text, streaming with usage, tools, models, errors."""

import json

import openai
import pytest

from conftest import ANSWER, KEY, WEATHER_SCHEMA, fault

MODEL = "gpt-4o-2024-08-06"
HELLO = [{"role": "user", "content": "Hello there"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA}}]


@pytest.fixture
def client(sim_url):
    return openai.OpenAI(base_url=f"{sim_url}/v1", api_key=KEY, max_retries=0)


def test_a_completion_returns_the_answer_with_exact_usage(client):
    resp = client.chat.completions.create(model=MODEL, messages=HELLO)
    assert resp.choices[0].message.content == ANSWER
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (3, 8, 11)
    assert resp.usage.prompt_tokens_details.cached_tokens == 0


def test_a_stream_with_include_usage_ends_with_a_usage_chunk(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 8)


def test_a_required_tool_is_called_with_json_string_arguments(client):
    resp = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Paris"}], tools=TOOLS, tool_choice="required")
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})


def test_streamed_tool_arguments_reassemble(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Paris"}], tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True)
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                   for c in stream if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(args) == {"city": "Paris"}


def test_an_image_url_part_is_accepted(client):
    resp = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "Hello there"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]}])
    assert resp.choices[0].message.content == ANSWER


def test_models_are_listed(client):
    assert MODEL in [m.id for m in client.models.list()]


@pytest.mark.parametrize("kind,error,code", [
    ("rate_limit", openai.RateLimitError, "rate_limit_exceeded"),
    ("quota", openai.RateLimitError, "insufficient_quota"),
    ("unauthorized", openai.AuthenticationError, "invalid_api_key"),
    ("server_error", openai.InternalServerError, None),
    ("context_too_long", openai.BadRequestError, "context_length_exceeded"),
])
def test_each_fault_raises_the_sdk_error_with_its_code(client, kind, error, code):
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO, extra_headers=fault(kind))
    assert caught.value.code == code


def test_a_cut_stream_gives_no_done_marker(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, extra_headers=fault("cut")))
    assert all(c.choices[0].finish_reason is None for c in chunks if c.choices)
