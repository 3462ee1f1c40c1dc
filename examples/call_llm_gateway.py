"""Client side of the playbook: every service calls one function with its use case.

    pip install openai
    python examples/call_llm_gateway.py          # against `sluice serve` on 127.0.0.1:8080

The use case is the route name (sent as the model; the `x-sluice-route` header works too), so
Sluice picks the model tier, fails over between providers, caches and records the spend.
"""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("SLUICE_URL", "http://127.0.0.1:8080/v1"),
    # Sluice holds the provider keys; a gateway key goes here once keys are configured.
    api_key=os.environ.get("SLUICE_API_KEY", "unused"),
)


def call_llm_gateway(use_case: str, prompt: str, **kwargs) -> str:
    """Send `prompt` for `use_case` (a Sluice route) and return the answer text."""
    resp = client.chat.completions.with_raw_response.create(
        model=use_case,
        messages=[{"role": "user", "content": prompt}],
        **kwargs,
    )
    completion = resp.parse()
    print(
        f"[{use_case}] answered by {resp.headers.get('x-sluice-target')} "
        f"(attempts {resp.headers.get('x-sluice-attempts')}, "
        f"cache {resp.headers.get('x-sluice-cache', 'n/a')})"
    )
    return completion.choices[0].message.content


if __name__ == "__main__":
    print(call_llm_gateway("simple_classification",
                           "Is this message spam? 'You won a free cruise, click here'"))
    print(call_llm_gateway("complex",
                           "Explain the trade-offs of optimistic versus pessimistic locking."))
