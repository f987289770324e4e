"""The official `anthropic` SDK against the simulator: text, streaming, tools, tokens, models, errors."""

import anthropic
import pytest

from conftest import ANSWER, KEY, WEATHER_SCHEMA, fault

MODEL = "claude-3-5-sonnet-20241022"
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def client(sim_url):
    return anthropic.Anthropic(base_url=sim_url, api_key=KEY, max_retries=0)


def test_a_message_returns_the_answer_with_exact_usage(client):
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert msg.content[0].text == ANSWER
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (3, 8)
    assert msg.usage.cache_read_input_tokens == 0


def test_a_streamed_message_yields_the_same_text_and_final_usage(client):
    with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ANSWER
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 8)


def test_max_tokens_ends_the_message_for_length(client):
    msg = client.messages.create(model=MODEL, max_tokens=3, messages=HELLO)
    assert (msg.content[0].text, msg.stop_reason) == ("This is a", "max_tokens")


def test_a_forced_tool_is_called_whole_and_streamed(client):
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}]
    msg = client.messages.create(
        model=MODEL, max_tokens=100, tools=tools, tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Paris"}],
    )
    assert msg.stop_reason == "tool_use"
    assert (msg.content[0].name, msg.content[0].input) == ("get_weather", {"city": "Paris"})
    with client.messages.stream(
        model=MODEL, max_tokens=100, tools=tools, tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Paris"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == {"city": "Paris"}


def test_an_image_block_is_accepted(client):
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "text", "text": "Hello there"},
    ]}])
    assert msg.content[0].text == ANSWER


def test_tokens_are_counted_and_models_listed(client):
    assert client.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens == 3
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids


@pytest.mark.parametrize("kind,error,status", [
    ("rate_limit", anthropic.RateLimitError, 429),
    ("overloaded", anthropic.APIStatusError, 529),
    ("server_error", anthropic.InternalServerError, 500),
    ("unauthorized", anthropic.AuthenticationError, 401),
    ("context_too_long", anthropic.BadRequestError, 400),
])
def test_each_fault_raises_the_sdk_error_for_its_status(client, kind, error, status):
    with pytest.raises(error) as caught:
        client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, extra_headers=fault(kind))
    assert caught.value.status_code == status


def test_the_rate_limit_carries_retry_after(client):
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, extra_headers=fault("rate_limit"))
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_a_malformed_stream_chunk_raises(client):
    with pytest.raises(Exception):
        with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO, extra_headers=fault("malformed")) as stream:
            for _ in stream.text_stream:
                pass
