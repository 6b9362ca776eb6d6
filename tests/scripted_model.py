"""A tiny chat model whose answers are known in advance, built locally as GGUF or transformers.

Every attention and feed-forward block writes zeros, so the residual stream is the token
embedding and the next token depends only on the current one: a bigram model. Embeddings are
one-hot and the output matrix scripts each transition with a large logit, so generation walks
a fixed chain of multi-character tokens (sampled at any temperature, the other tokens have a
probability of about ``vocab * e**-LOGIT``).

The chat template ends the prompt with ``<think>`` and a letter chosen by the length of the
last user message, so the answer depends on the prompt:

    <think>\\nB  ->  "Thinking about B" (", still B" | ", yes B") "\\n</think>...Answer: B ..." EOS

The middle step is a fair coin between two tokens (equal logits), which ``seed`` decides;
greedy decoding takes the first. Prompts tokenise one byte per token (no merges), so the number
of prompt tokens is known exactly (``prompt_tokens``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

LETTERS = "ABCD"
#: The boxed number each letter's answer ends with.
BOXED = {"A": "7", "B": "25", "C": "204", "D": "33"}
BOS, EOS = "<s>", "</s>"
LOGIT = 20.0
PIECE_BYTES = 32

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n"
    "<think>\n{{ 'ABCD'[messages[-1]['content'] | length % 4] }}{% endif %}"
)


def letter_for(prompt: str) -> str:
    """The letter the template appends after a last user message ``prompt``."""
    return LETTERS[len(prompt) % len(LETTERS)]


def steps(letter: str) -> tuple[str, tuple[str, str], str]:
    """The chain of one letter: first token, the two tokens of the coin toss, last token."""
    return (
        f"Thinking about {letter}",
        (f", still {letter}", f", yes {letter}"),
        f"\n</think>\n\nAnswer: {letter} \\boxed{{{BOXED[letter]}}}",
    )


def response(prompt: str, coin: int = 0) -> str:
    """The whole text generated for a last user message ``prompt`` (``coin`` 0 when greedy)."""
    first, middle, last = steps(letter_for(prompt))
    return first + middle[coin] + last


def responses(prompt: str) -> set[str]:
    """Every text a sampled generation may produce for ``prompt``."""
    return {response(prompt, 0), response(prompt, 1)}


def pieces() -> list[str]:
    """The multi-character tokens of every chain, in vocabulary order.

    At most 32 bytes each: llama-cpp-python decodes a token into a 32-byte buffer and turns a
    longer one into nothing.
    """
    out: list[str] = []
    for letter in LETTERS:
        first, middle, last = steps(letter)
        out += [first, *middle, last]
    assert all(len(piece.encode()) <= PIECE_BYTES for piece in out)
    return out


def render(messages: Sequence[Mapping[str, str]]) -> str:
    """The prompt text that ``CHAT_TEMPLATE`` renders, written out in Python as a cross-check."""
    turns = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
    return f"{BOS}{turns}<|assistant|>\n<think>\n{letter_for(messages[-1]['content'])}"


def prompt_tokens(messages: Sequence[Mapping[str, str]], spaces_escaped: bool = False) -> int:
    """Tokens of the rendered prompt: BOS, then one per UTF-8 byte.

    SentencePiece (llama.cpp's "llama" tokenizer) first writes each space as U+2581, three
    bytes; a byte-level BPE tokenizer (transformers) does not.
    """
    text = render(messages).removeprefix(BOS)
    if spaces_escaped:
        text = text.replace(" ", "\u2581")
    return 1 + len(text.encode("utf-8"))


@dataclass(frozen=True)
class Vocabulary:
    """Where the tokens the script needs sit in a concrete vocabulary."""

    size: int
    eos: int
    letters: Mapping[str, int]  # the token of each letter as the prompt's last token
    piece: Mapping[str, int]  # the token of each chain piece


def transitions(vocab: Vocabulary) -> dict[int, list[int]]:
    """Next tokens of each token (two for the coin toss); every other token leads to EOS."""
    table: dict[int, list[int]] = {token: [vocab.eos] for token in range(vocab.size)}
    for letter in LETTERS:
        first, middle, last = steps(letter)
        table[vocab.letters[letter]] = [vocab.piece[first]]
        table[vocab.piece[first]] = [vocab.piece[m] for m in middle]
        for step in middle:
            table[vocab.piece[step]] = [vocab.piece[last]]
    return table


def bigram_weights(vocab: Vocabulary, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, output matrix), both ``size x dim``: one-hot embeddings, scripted logits.

    After the final RMS norm a one-hot vector is scaled by ``sqrt(dim)``: the output matrix
    is divided by it so that each scripted next token gets a logit of exactly ``LOGIT``.
    """
    if dim < vocab.size:
        raise ValueError("one-hot embeddings need dim >= vocabulary size")
    embeddings = np.zeros((vocab.size, dim), dtype=np.float32)
    embeddings[np.arange(vocab.size), np.arange(vocab.size)] = 1.0
    output = np.zeros((vocab.size, dim), dtype=np.float32)
    for token, following in transitions(vocab).items():
        output[following, token] = LOGIT / np.sqrt(dim)
    return embeddings, output
