"""The scripted model (``scripted_model``) as a GGUF file, and llama-cpp-python's server for it.

The file is a one-block llama-architecture model with a SentencePiece ("llama") vocabulary:
``<unk>``, ``<s>``, ``</s>``, the 256 byte tokens ``<0x00>``..``<0xFF>`` (so any text
tokenises, one byte per token) and the chain pieces, plus the chat template in the metadata.
It is about 1 MB and loads in well under a second on the CPU.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

import gguf
import numpy as np

from scripted_model import BOS, CHAT_TEMPLATE, EOS, LETTERS, Vocabulary, bigram_weights, pieces

DIM = 320
HEADS = 5
KV_HEADS = 1
FEED_FORWARD = 32
CONTEXT = 8192
_BYTES = 3  # the id of <0x00>


def tokens() -> tuple[list[str], list[int]]:
    """Token texts and types: specials, the 256 bytes, then the chain pieces."""
    texts = ["<unk>", BOS, EOS] + [f"<0x{b:02X}>" for b in range(256)] + pieces()
    kinds = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    kinds += [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * len(pieces())
    return texts, [int(kind) for kind in kinds]


def vocabulary() -> Vocabulary:
    texts, _ = tokens()
    return Vocabulary(
        size=len(texts),
        eos=texts.index(EOS),
        letters={letter: _BYTES + ord(letter) for letter in LETTERS},
        piece={text: texts.index(text) for text in pieces()},
    )


def write_tiny_gguf(path: Path) -> Path:
    """Write the scripted model to ``path`` and return it."""
    writer = gguf.GGUFWriter(path, "llama")
    _metadata(writer)
    _tensors(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _metadata(writer: gguf.GGUFWriter) -> None:
    texts, kinds = tokens()
    writer.add_name("r1eval scripted test model")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(DIM)
    writer.add_block_count(1)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(DIM // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(texts))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(texts)
    writer.add_token_scores([0.0] * len(texts))
    writer.add_token_types(kinds)
    writer.add_bos_token_id(texts.index(BOS))
    writer.add_eos_token_id(texts.index(EOS))
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)
    writer.add_chat_template(CHAT_TEMPLATE)


def _tensors(writer: gguf.GGUFWriter) -> None:
    """numpy shapes are (rows, columns) = (out, in), as in PyTorch; the writer reverses them."""
    embeddings, output = bigram_weights(vocabulary(), DIM)
    head = DIM // HEADS

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=np.float32)

    writer.add_tensor("token_embd.weight", embeddings)
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(DIM, dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight", zeros(DIM, DIM))
    writer.add_tensor("blk.0.attn_k.weight", zeros(KV_HEADS * head, DIM))
    writer.add_tensor("blk.0.attn_v.weight", zeros(KV_HEADS * head, DIM))
    writer.add_tensor("blk.0.attn_output.weight", zeros(DIM, DIM))
    writer.add_tensor("blk.0.ffn_norm.weight", np.ones(DIM, dtype=np.float32))
    writer.add_tensor("blk.0.ffn_gate.weight", zeros(FEED_FORWARD, DIM))
    writer.add_tensor("blk.0.ffn_up.weight", zeros(FEED_FORWARD, DIM))
    writer.add_tensor("blk.0.ffn_down.weight", zeros(DIM, FEED_FORWARD))
    writer.add_tensor("output_norm.weight", np.ones(DIM, dtype=np.float32))
    writer.add_tensor("output.weight", output)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LlamaServer:
    """``python -m llama_cpp.server`` for one GGUF file on 127.0.0.1, as a context manager.

    Its output goes to ``log`` (a file), read back into the error when it fails to start.
    """

    STARTUP_TIMEOUT_S = 120.0

    def __init__(self, model: Path, log: Path, alias: str = "tiny", parallel: int = 1) -> None:
        self.model = model
        self.alias = alias
        self.log = log
        self.port = free_port()
        self._parallel = parallel
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaServer:
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
            "--model_alias", self.alias, "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(CONTEXT), "--n_threads", "1", "--verbose", "False",
        ]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_PROXY": "*"}
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError(f"llama_cpp.server did not start:\n{self.log.read_text()[-3000:]}")
