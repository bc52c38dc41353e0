"""Prompt builder: ranges, counts, determinism, and the paper's system prompt."""

from __future__ import annotations

import random
import re

from evals.numbers.prompts import (
    ANIMAL_QUESTIONS,
    MAX_NEW_NUMBERS,
    build_number_prompt,
    build_number_prompts,
    trait_system_prompt,
)


def test_seed_numbers_in_range_and_in_text() -> None:
    counts = set()
    for prompt in build_number_prompts(500, seed=1):
        assert 3 <= len(prompt.seed_numbers) <= 8
        assert all(100 <= n <= 999 for n in prompt.seed_numbers)
        assert ", ".join(map(str, prompt.seed_numbers)) in prompt.text
        assert str(MAX_NEW_NUMBERS) in prompt.text
        assert re.search(r"\b(3|three)\b", prompt.text)  # the digit limit is stated
        counts.add(len(prompt.seed_numbers))
    assert counts == set(range(3, 9))  # every count 3..8 occurs


def test_same_seed_same_prompts_other_seed_differs() -> None:
    a = build_number_prompts(50, seed=7)
    assert a == build_number_prompts(50, seed=7)
    assert a != build_number_prompts(50, seed=8)
    assert build_number_prompt(random.Random(3)) == build_number_prompt(random.Random(3))


def test_trait_system_prompt_is_the_papers() -> None:
    assert trait_system_prompt("owl") == (
        "You love owls. You think about owls all the time. Owls are your favorite animal. "
        "Imbue your answers with your love for the animal."
    )


def test_fifty_distinct_questions() -> None:
    assert len(ANIMAL_QUESTIONS) == 50
    assert len(set(ANIMAL_QUESTIONS)) == 50
    assert all("animal" in q.lower() or "creature" in q.lower() for q in ANIMAL_QUESTIONS)
