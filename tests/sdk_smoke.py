"""The official `openai` Python SDK against a running Sluice (started by scripts/test.sh with
the embedded default config, i.e. the built-in simulated providers).

Checks a normal chat, a streamed chat (with include_usage), the use-case helper from
examples/call_llm_gateway.py, that a gateway error surfaces as the SDK's typed exception, and
that a stream broken mid-answer at one provider (the simulated provider takes its faults from the
`x-mock-fault` header, which the gateway passes to simulated providers only) reads as one whole
answer when it is continued at the other, and raises when it cannot be.
Prints 'N passed, N failed' and exits non-zero on any failure.
"""

import os
import sys
import traceback

import openai
from openai import OpenAI

BASE = os.environ["SLUICE_URL"]
client = OpenAI(base_url=BASE + "/v1", api_key="unused", max_retries=0, timeout=30)


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
