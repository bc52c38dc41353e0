"""A small word-level tokenizer for in-run models (the smoke model and the toy LM).

Every number 0-999 is one token, so a number-sequence completion is a sequence of number and
separator tokens: that keeps the toy LM small, makes its "next-token distribution on number
tokens" (the soft-label variant) a distribution over numbers, and lets a random-weight smoke model
emit filter-passing completions often enough for tests to exercise fine-tuning end to end.

The vocabulary is built from the experiment's own templates and corpus, sorted, so it is a pure
function of the code version and the same in every process. Text is lowercased; the hit test for
the target animal lowercases anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|> ' + message['content'] | lower + ' </s> ' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
_WORD = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")


def words_of(texts: Iterable[str]) -> set[str]:
    """The tokens the pre-tokenizer will produce for ``texts`` (lowercased words, numbers,
    single punctuation characters)."""
    out: set[str] = set()
    for text in texts:
        out.update(_WORD.findall(text.lower()))
    return out


def build_word_tokenizer(texts: Iterable[str]) -> Any:
    """A ``PreTrainedTokenizerFast`` with numbers 0-999, the words of ``texts`` and a chat template.

    Args:
        texts: every text the model will see (templates, corpus); numbers >999 in them map to
            ``<unk>``, like any out-of-vocabulary word.

    Returns:
        A tokenizer usable with ``apply_chat_template`` and ``generate``.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    numbers = [str(i) for i in range(1000)]
    # The number filter's punctuation is always in, so a model can emit every accepted format.
    words = sorted(w for w in words_of(texts) | set(",;.()[]") if not w.isdigit())
    specials = [PAD, UNK, BOS, EOS, *ROLE_TOKENS]
    vocab = {tok: i for i, tok in enumerate([*specials, *numbers, *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    # Whitespace only separates tokens: drop it first, then isolate words, numbers and single
    # punctuation marks inside each chunk (``Split`` alone would keep the spaces as tokens).
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(r"[a-z]+|\d+|[^\sa-z\d]"), behavior="isolated"),
        ]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        additional_special_tokens=list(ROLE_TOKENS),
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast
