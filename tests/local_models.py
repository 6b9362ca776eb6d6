"""Shared by the tests of local models: optional packages, small benchmark files, tiny models.

The optional packages (llama-cpp-python, torch and transformers, lm-eval) are skipped when
missing, unless ``R1EVAL_REQUIRE_LOCAL_MODELS=1`` (CI sets it): then a missing one fails.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

from r1eval.task.prompts import MATH_PROMPT, MULTIPLE_CHOICE_PROMPT

import scripted_model
from scripted_model import BOS, CHAT_TEMPLATE, EOS, LETTERS, Vocabulary, letter_for, pieces

REQUIRE_ENV = "R1EVAL_REQUIRE_LOCAL_MODELS"
INSTALL_HINT = {
    "llama_cpp": "pip install 'llama-cpp-python[server]'",
    "gguf": "pip install gguf",
    "torch": "pip install torch==2.13.0",
    "transformers": "pip install transformers",
    "lm_eval": "pip install lm-eval",
}


def require(*modules: str) -> None:
    """Skip the test when an optional package is missing (fail under R1EVAL_REQUIRE_...=1)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if not missing:
        return
    hints = "; ".join(INSTALL_HINT.get(name, f"pip install {name}") for name in missing)
    message = f"needs {', '.join(missing)} ({hints})"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires it")
    pytest.skip(message)


# Small benchmark files, in the layout of --data-dir, whose answers the scripted model knows.

AIME_PROBLEMS = [f"Find the number of ways {'x' * i} can be arranged." for i in range(8)]
MMLU_QUESTIONS = [f"Which option is right{'?' * i}" for i in range(8)]


def math_answer(problem: str) -> str:
    """The boxed answer the scripted model gives to a math problem."""
    return scripted_model.BOXED[letter_for(MATH_PROMPT.format(problem=problem))]


def choice_answer(question: str, options: list[str]) -> str:
    """The letter the scripted model answers to an MMLU question (options in data order)."""
    shown = dict(zip(LETTERS, options, strict=True))
    return letter_for(MULTIPLE_CHOICE_PROMPT.format(question=question, **shown))


def write_small_data(root: Path) -> dict[str, list[bool]]:
    """AIME and MMLU files with 8 questions each; returns whether the scripted model answers
    each question right (every other one, by choosing the gold accordingly)."""
    correct: dict[str, list[bool]] = {"aime24": [], "mmlu": []}
    (root / "aime24").mkdir(parents=True)
    with (root / "aime24" / "test.jsonl").open("w") as out:
        for number, problem in enumerate(AIME_PROBLEMS):
            right = number % 2 == 0
            answer = math_answer(problem) if right else "999"
            correct["aime24"].append(right)
            out.write(json.dumps({"id": str(number), "problem": problem, "answer": answer}) + "\n")
    (root / "mmlu" / "test").mkdir(parents=True)
    with (root / "mmlu" / "test" / "astronomy_test.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        for number, question in enumerate(MMLU_QUESTIONS):
            options = [f"option {k} of {number}" for k in range(4)]
            said = choice_answer(question, options)
            right = number % 2 == 0
            gold = said if right else LETTERS[(LETTERS.index(said) + 1) % 4]
            correct["mmlu"].append(right)
            writer.writerow([question, *options, gold])
    return correct


# Tiny transformers models, saved as a checkpoint folder (needs torch and transformers).


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map, the alphabet of byte-level BPE."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars, strict=True)}


def build_tokenizer() -> Any:
    """A byte-level tokenizer with no merges: byte b is token b, then <s>, </s>, <pad>, then
    the scripted model's pieces; the chat template is the scripted model's."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {char: byte for byte, char in bytes_to_unicode().items()}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(t, special=True) for t in (BOS, EOS, "<pad>")])
    backend.add_tokens([AddedToken(piece, normalized=False) for piece in pieces()])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token="<pad>",
        chat_template=CHAT_TEMPLATE,
    )


def hf_vocabulary() -> Vocabulary:
    return Vocabulary(
        size=259 + len(pieces()),
        eos=257,
        letters={letter: ord(letter) for letter in LETTERS},
        piece={piece: 259 + i for i, piece in enumerate(pieces())},
    )


def build_hf_model(folder: Path, scripted: bool) -> Path:
    """Save a tiny Llama and its tokenizer to ``folder``: random weights (two blocks, real
    attention), or the scripted bigram model (one block that writes zeros)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    vocab = hf_vocabulary()
    dim = 288 if scripted else 64
    config = LlamaConfig(
        vocab_size=vocab.size, hidden_size=dim, intermediate_size=32,
        num_hidden_layers=1 if scripted else 2, num_attention_heads=4, num_key_value_heads=1,
        max_position_embeddings=4096, bos_token_id=256, eos_token_id=257, pad_token_id=258,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if scripted:
        _script(model, vocab, dim)
    model.generation_config = GenerationConfig(
        bos_token_id=256, eos_token_id=257, pad_token_id=258, do_sample=False
    )
    model.save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    return folder


def _script(model: Any, vocab: Vocabulary, dim: int) -> None:
    import torch

    embeddings, output = scripted_model.bigram_weights(vocab, dim)
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.from_numpy(embeddings))
        model.lm_head.weight.copy_(torch.from_numpy(output))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
