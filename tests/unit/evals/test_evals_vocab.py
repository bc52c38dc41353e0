"""The word-level tokenizer of the in-run models."""

from __future__ import annotations

import pytest

pytest.importorskip("tokenizers")

from evals.numbers.prompts import ANIMAL_QUESTIONS
from evals.toy_lm import build_tokenizer


def test_known_text_has_no_unknown_tokens_and_numbers_are_single_tokens() -> None:
    tok = build_tokenizer()
    chat = [
        {"role": "user", "content": ANIMAL_QUESTIONS[0]},
        {"role": "assistant", "content": "owl"},
    ]
    ids = tok(tok.apply_chat_template(chat, tokenize=False), add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids  # whitespace must not become a token
    prompt = tok.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    # The answer's first token follows the assistant marker directly.
    assert ids[len(prompt_ids)] == tok.convert_tokens_to_ids("owl")
    assert tok("123, 999", add_special_tokens=False)["input_ids"] == [
        tok.convert_tokens_to_ids(t) for t in ("123", ",", "999")
    ]
    assert tok.decode(tok("[1, 2]", add_special_tokens=False)["input_ids"]) == "[ 1 , 2 ]"
