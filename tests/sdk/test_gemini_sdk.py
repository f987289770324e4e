"""The official `google-genai` SDK against the simulator: text, streaming, tools, tokens, models, errors."""

import pytest
from google import genai
from google.genai import errors, types

from conftest import ANSWER, KEY, fault

MODEL = "gemini-1.5-flash-002"


@pytest.fixture
def client(sim_url):
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=sim_url))


def weather_tool():
    return types.Tool(function_declarations=[types.FunctionDeclaration(
        name="get_weather", description="Weather",
        parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
    )])


def test_generate_content_returns_the_answer_with_usage_metadata(client):
    resp = client.models.generate_content(model=MODEL, contents="Hello there")
    assert resp.text == ANSWER
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    usage = resp.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (3, 8, 11)


def test_streaming_over_crlf_sse_yields_the_same_text(client):
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Hello there"))
    assert "".join(c.text or "" for c in chunks) == ANSWER
    assert chunks[-1].usage_metadata.candidates_token_count == 8


def test_function_calling_mode_any_returns_a_function_call(client):
    config = types.GenerateContentConfig(
        tools=[weather_tool()],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    resp = client.models.generate_content(model=MODEL, contents="Paris", config=config)
    call = resp.function_calls[0]
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})


def test_an_inline_image_is_accepted(client):
    resp = client.models.generate_content(model=MODEL, contents=[
        types.Part.from_bytes(data=b"\x89PNG\r\n", mime_type="image/png"), "Hello there"])
    assert resp.text == ANSWER


def test_tokens_are_counted_and_models_listed(client):
    assert client.models.count_tokens(model=MODEL, contents="Hello there").total_tokens == 3
    names = [m.name for m in client.models.list()]
    assert f"models/{MODEL}" in names


@pytest.mark.parametrize("kind,error,code,status", [
    ("rate_limit", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    ("unauthorized", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ("overloaded", errors.ServerError, 503, "UNAVAILABLE"),
    ("server_error", errors.ServerError, 500, "INTERNAL"),
])
def test_each_fault_raises_the_sdk_error_with_its_status(client, kind, error, code, status):
    config = types.GenerateContentConfig(http_options=types.HttpOptions(headers=fault(kind)))
    with pytest.raises(error) as caught:
        client.models.generate_content(model=MODEL, contents="Hello there", config=config)
    assert (caught.value.code, caught.value.status) == (code, status)
