"""The official `openai` Python client against a running `hearth serve`.

Usage: check.py BASE_URL MODEL_ID   (OPENAI_API_KEY in the environment)
Prints "openai client: all checks passed" when every check holds; raises otherwise.
"""

import os
import sys

import openai
from openai import OpenAI

base_url, model = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, timeout=120, max_retries=0)

# Models.
models = client.models.list()
ids = [m.id for m in models.data]
assert model in ids, ids

story = "Once upon a time there was a little cat who lived in a big house with a dog"
messages = [
    {"role": "system", "content": "You are a storyteller. " * 6},
    {"role": "user", "content": story},
]

# A non-streaming chat completion.
chat = client.chat.completions.create(
    model=model, messages=messages, temperature=0, max_tokens=16, seed=1
)
assert chat.object == "chat.completion", chat
assert chat.choices[0].message.role == "assistant", chat
assert isinstance(chat.choices[0].message.content, str), chat
assert chat.choices[0].finish_reason in ("stop", "length"), chat
assert chat.usage.completion_tokens > 0, chat.usage
assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens

# Greedy, one user message: the same text as `hearth generate --chat --temperature 0`
# (HEARTH_EXPECTED_GREEDY, set by tests/server.rs).
expected = os.environ.get("HEARTH_EXPECTED_GREEDY")
if expected is not None:
    greedy = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": story}], temperature=0, max_tokens=16
    )
    assert greedy.choices[0].message.content == expected, (greedy, expected)

# The same prefix again: cached tokens are reported.
again = client.chat.completions.create(
    model=model, messages=messages, temperature=0, max_tokens=16
)
cached = again.usage.prompt_tokens_details.cached_tokens
assert cached and cached > 0, again.usage
assert again.choices[0].message.content == chat.choices[0].message.content

# A streaming chat completion with usage at the end.
text = ""
usage = None
finish = None
stream = client.chat.completions.create(
    model=model,
    messages=messages,
    temperature=0,
    max_tokens=16,
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    assert chunk.object == "chat.completion.chunk", chunk
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        text += choice.delta.content or ""
        finish = choice.finish_reason or finish
assert text == chat.choices[0].message.content, (text, chat)
assert finish in ("stop", "length"), finish
assert usage is not None and usage.completion_tokens > 0, usage

# A completion.
completion = client.completions.create(model=model, prompt=story, max_tokens=12, temperature=0)
assert completion.object == "text_completion", completion
assert isinstance(completion.choices[0].text, str)
assert 0 < completion.usage.completion_tokens <= 12, completion.usage

# Errors arrive as the client's typed exceptions.
try:
    client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as e:
    assert "no-such-model" in str(e), e
try:
    client.chat.completions.create(model=model, messages=messages, n=2, max_tokens=2)
    raise AssertionError("n=2 was accepted")
except openai.BadRequestError as e:
    assert e.body and e.body.get("param") == "n", e.body
try:
    OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError:
    pass

print("openai client: all checks passed")
