"""The official `openai` and `anthropic` SDKs, unchanged, pointed at Cover's gateway
(COVER_GATEWAY_URL, a running `cover serve` whose providers are the simulator):
any provider through either SDK, streams with usage, a tool round trip, vision, the
models list, image generation, errors in each SDK's own types, and a spent budget the SDK
does not retry."""

import base64
import json
import os
import uuid

import anthropic
import httpx
import openai
import pytest

from conftest import WEATHER_SCHEMA

SONNET = "claude-3-5-sonnet-20241022"
MINI = "gpt-4o-mini"
ANSWER = "This is a simulated answer to: Hello there"
HELLO = [{"role": "user", "content": "Hello there"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA}}]
PASSWORD = "correct horse battery"


class Gateway:
    """A signed-in account with a project and a `chat` token for it."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=20)
        email = f"sdk-{uuid.uuid4().hex[:12]}@example.com"
        self.http.post("/api/auth/signup", json={"email": email, "password": PASSWORD}).raise_for_status()
        self.project, self.token = self.new_project("SDK gateway")

    def new_project(self, name: str):
        created = self.http.post("/api/projects", json={"name": name})
        created.raise_for_status()
        project = created.json()["id"]
        token = self.http.post(f"/api/projects/{project}/tokens", json={"name": "sdk"})
        token.raise_for_status()
        return project, token.json()["secret"]

    def openai(self, token=None, **options) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=token or self.token, max_retries=0,
                             timeout=20, **options)


@pytest.fixture(scope="module")
def gateway():
    url = os.environ.get("COVER_GATEWAY_URL")
    if not url:
        pytest.fail("COVER_GATEWAY_URL must point at a running `cover serve` (scripts/test starts one)")
    gateway = Gateway(url.rstrip("/"))
    yield gateway
    gateway.http.close()


def test_the_openai_sdk_reaches_claude_through_the_project_default(gateway):
    raw = gateway.openai().chat.completions.with_raw_response.create(model="cover/default", messages=HELLO)
    assert raw.headers["x-cover-provider"] == "claude"
    assert raw.headers["x-cover-fallback"] == "none"
    completion = raw.parse()
    assert completion.model == SONNET
    assert completion.choices[0].message.content == ANSWER
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert completion.usage.model_extra["cost_usd"] == raw.headers["x-cover-cost-usd"]


def test_a_stream_with_include_usage_ends_with_the_usage_chunk(gateway):
    chunks = list(gateway.openai().chat.completions.create(
        model=MINI, messages=HELLO, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert float(chunks[-1].usage.model_extra["cost_usd"]) > 0


def test_a_tool_round_trip(gateway):
    client = gateway.openai()
    asked = [{"role": "user", "content": "Paris"}]
    first = client.chat.completions.create(model=MINI, messages=asked, tools=TOOLS, tool_choice="required")
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    answered = asked + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 °C and sunny"},
    ]
    second = client.chat.completions.create(model=MINI, messages=answered, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content.startswith("This is a simulated answer")


def test_streamed_tool_calls_carry_their_index(gateway):
    stream = gateway.openai().chat.completions.create(
        model=SONNET, messages=[{"role": "user", "content": "Paris"}], tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, stream=True)
    pieces = [c.choices[0].delta.tool_calls[0] for c in stream if c.choices and c.choices[0].delta.tool_calls]
    assert pieces and all(p.index == 0 for p in pieces)
    assert pieces[0].function.name == "get_weather"
    assert json.loads("".join(p.function.arguments or "" for p in pieces)) == {"city": "Paris"}


def test_an_image_reaches_a_vision_model(gateway):
    completion = gateway.openai().chat.completions.create(model=MINI, messages=[{"role": "user", "content": [
        {"type": "text", "text": "Hello there"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]}])
    assert completion.choices[0].message.content == ANSWER


def test_the_models_list_is_what_the_project_can_route_to(gateway):
    models = list(gateway.openai().models.list())
    ids = {m.id for m in models}
    assert {SONNET, MINI} <= ids
    # This server has managed Claude and OpenAI keys only.
    assert {m.owned_by for m in models} == {"claude", "openai"}


def test_a_bad_parameter_is_the_sdks_bad_request_naming_it(gateway):
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().chat.completions.create(model=SONNET, messages=HELLO, temperature=1.5)
    assert caught.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().chat.completions.create(model="no-such-model", messages=HELLO)
    assert caught.value.param == "model"


def test_json_mode_and_schemas_come_back_as_json(gateway):
    client = gateway.openai()
    asked = [{"role": "user", "content": "Hello there in JSON"}]
    completion = client.chat.completions.create(model=MINI, messages=asked, response_format={"type": "json_object"})
    assert json.loads(completion.choices[0].message.content) == {
        "answer": "This is a simulated answer to: Hello there in JSON"}
    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"],
              "additionalProperties": False}
    completion = client.chat.completions.create(model=MINI, messages=asked, response_format={
        "type": "json_schema", "json_schema": {"name": "greeting", "schema": schema, "strict": True}})
    assert json.loads(completion.choices[0].message.content) == {"greeting": "Hello there in JSON"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=SONNET, messages=asked, response_format={"type": "json_object"})
    assert caught.value.param == "response_format"


def test_images_generate_draws_a_png_priced_in_the_headers(gateway):
    raw = gateway.openai().images.with_raw_response.generate(
        model="gpt-image-1", prompt="A lighthouse at dusk", size="1024x1024", quality="low")
    assert raw.headers["x-cover-provider"] == "openai"
    assert raw.headers["x-cover-model"] == "gpt-image-1"
    result = raw.parse()
    png = base64.b64decode(result.data[0].b64_json)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(png[16:20], "big") == 1024
    # A low square gpt-image-1 picture bills 272 output tokens.
    assert result.usage.output_tokens == 272
    assert result.usage.model_extra["cost_usd"] == raw.headers["x-cover-cost-usd"]
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().images.generate(model="gpt-image-1", prompt="A lighthouse", size="999x999")
    assert caught.value.param == "size"


def test_an_unknown_token_is_the_sdks_authentication_error(gateway):
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(token="cov_not-a-real-token").chat.completions.create(model=MINI, messages=HELLO)


def test_a_spent_budget_is_a_rate_limit_the_sdk_does_not_retry(gateway):
    project, token = gateway.new_project("SDK budget")
    gateway.http.put(f"/api/projects/{project}/budget",
                     json={"limitUsd": "0.000001", "webhookUrl": None}).raise_for_status()
    sent = []
    http = httpx.Client(event_hooks={"request": [sent.append]}, timeout=20)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=3, http_client=http)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="cover/default", messages=HELLO)
    assert caught.value.code == "budget_exceeded"
    assert len(sent) == 1, "x-should-retry: false stops the SDK's own retries"


def test_the_anthropic_sdk_reaches_gpt_through_messages(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token, max_retries=0, timeout=20)
    message = client.messages.create(model=MINI, max_tokens=200, messages=HELLO)
    assert message.content[0].text == ANSWER
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    with client.messages.stream(model=SONNET, max_tokens=200, messages=HELLO) as stream:
        assert "".join(stream.text_stream) == ANSWER
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_the_anthropic_sdk_gets_a_forced_tool_call(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token, max_retries=0, timeout=20)
    message = client.messages.create(
        model=MINI, max_tokens=200, messages=[{"role": "user", "content": "Paris"}],
        tools=[{"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}],
        tool_choice={"type": "tool", "name": "get_weather"})
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"city": "Paris"})
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=MINI, max_tokens=200, messages=HELLO, extra_body={"temperature": 3})
