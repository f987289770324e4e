"""The official `ollama` SDK against the simulator: chat, streaming, tools, images, tags, errors."""

import ollama
import pytest

from conftest import ANSWER, WEATHER_SCHEMA, fault

MODEL = "llama3.2"
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def client(sim_url):
    return ollama.Client(host=sim_url)


def test_chat_returns_the_answer_with_eval_counts(client):
    resp = client.chat(model=MODEL, messages=HELLO)
    assert resp.message.content == ANSWER
    assert (resp.done, resp.done_reason) == (True, "stop")
    assert (resp.prompt_eval_count, resp.eval_count) == (3, 8)


def test_streamed_chat_yields_the_same_text_and_a_final_done_line(client):
    parts = list(client.chat(model=MODEL, messages=HELLO, stream=True))
    assert "".join(p.message.content for p in parts) == ANSWER
    assert parts[-1].done and parts[-1].eval_count == 8


def test_num_predict_ends_for_length(client):
    resp = client.chat(model=MODEL, messages=HELLO, options={"num_predict": 3})
    assert (resp.message.content, resp.done_reason) == ("This is a", "length")


def test_tools_are_called_with_object_arguments(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA}}]
    resp = client.chat(model=MODEL, messages=[{"role": "user", "content": "Paris"}], tools=tools)
    call = resp.message.tool_calls[0]
    assert (call.function.name, dict(call.function.arguments)) == ("get_weather", {"city": "Paris"})


def test_images_are_accepted_and_models_listed(client):
    resp = client.chat(model=MODEL, messages=[{"role": "user", "content": "Hello there", "images": [b"\x89PNG\r\n"]}])
    assert resp.message.content == ANSWER
    assert "llama3.2:latest" in [m.model for m in client.list().models]


@pytest.mark.parametrize("kind,status", [("server_error", 500), ("overloaded", 503), ("rate_limit", 429)])
def test_each_fault_raises_a_response_error_with_its_status(sim_url, kind, status):
    client = ollama.Client(host=sim_url, headers=fault(kind))
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model=MODEL, messages=HELLO)
    assert caught.value.status_code == status
