"""The official `openai` and `anthropic` Python SDKs against a running Sluice (started by
scripts/test.sh with the embedded default config, i.e. the built-in simulated providers).

Checks a normal chat, a streamed chat (with include_usage), the use-case helper from
examples/call_llm_gateway.py, that a gateway error surfaces as the SDK's typed exception, and
that a stream broken mid-answer at one provider (the simulated provider takes its faults from the
`x-mock-fault` header, which the gateway passes to simulated providers only) reads as one whole
answer when it is continued at the other, and raises when it cannot be.
The `anthropic` SDK (base URL pointed at the gateway) completes plain and streamed messages and a
tool call round trip against a route whose primary is an OpenAI-compatible target (`chat`) and
one whose primary is Anthropic (`simple_classification`), parses a cache hit streamed as
Anthropic events, counts tokens, and gets bad input and broken streams as its typed errors.
Prints 'N passed, N failed' and exits non-zero on any failure.
"""

import os
import sys
import traceback

import anthropic
import openai
from openai import OpenAI

BASE = os.environ["SLUICE_URL"]
client = OpenAI(base_url=BASE + "/v1", api_key="unused", max_retries=0, timeout=30)
# Anthropic's SDK appends /v1/messages to its base URL itself.
claude = anthropic.Anthropic(base_url=BASE, api_key="unused", max_retries=0, timeout=30)

# Route -> the provider of its primary target in the default config.
ROUTES = {"chat": "openai/", "simple_classification": "anthropic/"}
WEATHER = {
    "name": "get_weather",
    "description": "The weather of a place",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}


def test_normal_chat():
    r = client.chat.completions.with_raw_response.create(
        model="simple_classification",
        messages=[{"role": "system", "content": "Answer yes or no."},
                  {"role": "user", "content": "Is water wet?"}],
    )
    c = r.parse()
    assert c.object == "chat.completion", c
    assert c.choices[0].message.role == "assistant"
    assert c.choices[0].message.content, c
    assert c.choices[0].finish_reason == "stop"
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    # The route's primary is Anthropic: its cache counts arrive in OpenAI's typed details.
    assert c.usage.prompt_tokens_details is not None, c.usage
    assert c.usage.prompt_tokens_details.cached_tokens == 0, c.usage
    assert r.headers["x-sluice-route"] == "simple_classification"
    assert r.headers["x-sluice-target"], r.headers


def test_streamed_chat():
    stream = client.chat.completions.create(
        model="complex",
        messages=[{"role": "user", "content": "Explain recursion with an example."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    assert text.startswith("Mock answer to:"), text
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_streamed_cache_hit_parses():
    def run():
        r = client.chat.completions.with_raw_response.create(
            model="chat",
            messages=[{"role": "user", "content": "How do I rotate my API keys safely?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        for chunk in r.parse():
            usage = chunk.usage or usage
            for ch in chunk.choices:
                text += ch.delta.content or ""
        return r.headers.get("x-sluice-cache"), text, usage

    first = run()
    import time
    for _ in range(50):  # the write-back is queued off the response path
        second = run()
        if second[0] != "miss":
            break
        time.sleep(0.05)
    assert first[0] == "miss", first
    assert second[0] == "hit-exact", second
    assert second[1] == first[1] and second[2].total_tokens == first[2].total_tokens


def read_stream(fault):
    r = client.chat.completions.with_raw_response.create(
        model="chat",
        messages=[{"role": "user", "content": "Describe the lighthouse at night in some detail."}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-mock-fault": fault, "x-sluice-cache": "bypass"},
    )
    text, usage, finish = "", None, None
    for chunk in r.parse():
        usage = chunk.usage or usage
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    return r.headers, text, usage, finish


def test_stream_resumed_at_the_other_provider():
    # The route `chat` starts at openai/gpt-4o-mini, broken after 5 tokens; the answer
    # continues at anthropic/claude-3-haiku (by prefill) in the same stream.
    headers, text, usage, finish = read_stream("gpt-4o-mini:cut-after-5")
    assert headers["x-sluice-target"] == "openai/gpt-4o-mini", headers
    assert text.startswith("Mock answer to: Describe the lighthouse at night"), text
    assert text.endswith(".") and len(text.split()) == 24, text
    assert "  " not in text, text
    assert finish == "stop"
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_nothing_can_continue_raises():
    try:
        read_stream("gpt-4o-mini:cut-after-5, claude-3-haiku-20240307:status-503")
    except openai.APIError as e:
        assert e.body["code"] == "stream_interrupted", e.body
    else:
        raise AssertionError("expected the SDK to raise on the in-band error")


def test_use_case_helper():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    os.environ["SLUICE_URL"] = BASE + "/v1"
    import call_llm_gateway as g
    g.client = client
    assert g.call_llm_gateway("simple_classification", "Spam? 'free cruise'")
    assert g.call_llm_gateway("complex", "Compare two sorting algorithms.")


def test_errors_are_typed():
    try:
        client.chat.completions.create(model="no-such-model",
                                       messages=[{"role": "user", "content": "x"}])
    except openai.NotFoundError as e:
        assert e.body["code"] == "model_not_found", e.body
    else:
        raise AssertionError("expected NotFoundError")


def test_anthropic_plain_message_at_either_primary():
    for route, provider in ROUTES.items():
        r = claude.messages.with_raw_response.create(
            model=route, max_tokens=256, system="Answer briefly.",
            messages=[{"role": "user", "content": "Is the sky blue on a clear day?"},
                      {"role": "assistant", "content": "Usually."},
                      {"role": "user", "content": "And at night?"}],
        )
        m = r.parse()
        assert isinstance(m, anthropic.types.Message), m
        assert m.type == "message" and m.role == "assistant", m
        assert m.id.startswith("msg_"), m.id
        assert m.content[0].type == "text", m
        assert m.content[0].text.startswith("Mock answer to: And at night?"), m
        assert m.stop_reason == "end_turn", m
        assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0, m.usage
        assert r.headers["x-sluice-target"].startswith(provider), (route, r.headers)
        assert r.headers["x-sluice-route"] == route


def test_anthropic_streamed_message_at_either_primary():
    for route, provider in ROUTES.items():
        with claude.messages.stream(
            model=route, max_tokens=256,
            messages=[{"role": "user", "content": "Explain recursion with an example."}],
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text.startswith("Mock answer to: Explain recursion"), text
        assert final.content[0].text == text, final
        assert final.stop_reason == "end_turn", final
        assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0, final.usage


def test_anthropic_tool_call_round_trip_at_either_primary():
    for route in ROUTES:
        question = {"role": "user", "content": "What is the weather in Oslo?"}
        m = claude.messages.create(model=route, max_tokens=256, messages=[question],
                                   tools=[WEATHER], tool_choice={"type": "any"})
        assert m.stop_reason == "tool_use", m
        call = next(b for b in m.content if b.type == "tool_use")
        assert call.name == "get_weather" and call.input == {"query": "What is the weather in Oslo?"}, call
        # The same call streamed: input_json_delta pieces the SDK joins.
        with claude.messages.stream(model=route, max_tokens=256, messages=[question],
                                    tools=[WEATHER], tool_choice={"type": "any"}) as stream:
            streamed = stream.get_final_message()
        block = next(b for b in streamed.content if b.type == "tool_use")
        assert block.input == call.input, block
        done = claude.messages.create(
            model=route, max_tokens=256, tools=[WEATHER],
            messages=[question, {"role": "assistant", "content": m.content},
                      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                    "content": "Rain, 12 degrees"}]}],
        )
        assert done.stop_reason == "end_turn", done
        assert done.content[0].type == "text" and done.content[0].text, done


def test_anthropic_cache_hit_streams_as_anthropic_events():
    question = [{"role": "user", "content": "How do I rotate my signing keys safely?"}]
    first = claude.messages.create(model="chat", max_tokens=300, messages=question)
    import time
    for _ in range(50):  # the write-back is queued off the response path
        raw = claude.messages.with_raw_response.create(model="chat", max_tokens=300,
                                                       messages=question, stream=True)
        events = list(raw.parse())
        if raw.headers.get("x-sluice-cache") != "miss":
            break
        time.sleep(0.05)
    assert raw.headers["x-sluice-cache"] == "hit-exact", raw.headers
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"], kinds
    assert "content_block_start" in kinds and "content_block_stop" in kinds, kinds
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == first.content[0].text, (text, first)
    delta = next(e for e in events if e.type == "message_delta")
    assert delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens == first.usage.output_tokens


def test_anthropic_count_tokens():
    short = claude.messages.count_tokens(model="chat", messages=[{"role": "user", "content": "Hi"}])
    long = claude.messages.count_tokens(model="chat", system="Be brief.",
                                        messages=[{"role": "user", "content": "Hi " * 200}])
    assert 0 < short.input_tokens < long.input_tokens, (short, long)


def test_anthropic_errors_are_typed():
    try:
        claude.messages.create(model="no-such-model", max_tokens=10,
                               messages=[{"role": "user", "content": "x"}])
    except anthropic.NotFoundError as e:
        assert e.body["type"] == "error" and e.body["error"]["type"] == "not_found_error", e.body
    else:
        raise AssertionError("expected NotFoundError")
    for bad in [{"max_tokens": 0}, {"max_tokens": 10, "temperature": 1.5}]:
        try:
            claude.messages.create(model="chat", messages=[{"role": "user", "content": "x"}], **bad)
        except anthropic.BadRequestError as e:
            assert e.body["error"]["type"] == "invalid_request_error", e.body
        else:
            raise AssertionError(f"expected BadRequestError for {bad}")
    # A stream broken at both providers: the in-band error event raises.
    try:
        with claude.messages.stream(
            model="chat", max_tokens=256,
            messages=[{"role": "user", "content": "Describe the lighthouse at night in some detail."}],
            extra_headers={"x-mock-fault": "gpt-4o-mini:cut-after-5, claude-3-haiku-20240307:status-503",
                           "x-sluice-cache": "bypass"},
        ) as stream:
            for _ in stream.text_stream:
                pass
    except anthropic.APIStatusError as e:
        assert e.body["error"]["type"] == "api_error", e.body
        assert "interrupted" in e.body["error"]["message"], e.body
    else:
        raise AssertionError("expected the SDK to raise on the error event")


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    failed = 0
    for t in tests:
        try:
            t()
            print(f"ok   {t.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"{len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
