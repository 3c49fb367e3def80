"""The synthesizer's fine-tuning: labels only on the trained segments, the masked loss by hand, no gradient from the
untrained tokens, and a held-out loss that falls, on a tiny Llama built from a config (CPU)."""
from __future__ import annotations

import json
import math
import random

import pytest
import torch

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from instruct_pt_trainer.finetune_synthesizer import IGNORE, collate, encode, main, masked_loss  # noqa: E402

SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<CON>", "</CON>", "<QUE>", "<ANS>", "</END>"]
CHARS = [chr(c) for c in range(32, 127)] + ["\n"]


def tiny_base(path) -> None:
    """A character-level tokenizer whose tags are single tokens, and a small Llama, saved as a transformers directory."""
    vocab = {t: i for i, t in enumerate(SPECIAL + CHARS)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex("."), behavior="isolated")
    tok.add_special_tokens(SPECIAL)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512, tie_word_embeddings=True)
    transformers.LlamaForCausalLM(config).save_pretrained(path)


def sequence(a: int, b: int) -> dict:
    context = f"{a} and {b}."
    return {"dataset": "sums", "segments": [{"text": f"<s> <CON> {context} </CON>\n\n", "train": False}, {"text": f"<QUE> sum? <ANS> {a + b} </END></s>", "train": True}]}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("base")
    tiny_base(path)
    return path


def test_labels_cover_the_trained_segments_only(base):
    tok = transformers.AutoTokenizer.from_pretrained(base)
    seq = sequence(2, 3)
    ids, labels = encode(tok, seq["segments"], 4096)
    n_input = len(tok(seq["segments"][0]["text"], add_special_tokens=False)["input_ids"])
    assert ids[0] == tok.convert_tokens_to_ids("<s>") and ids[-1] == tok.convert_tokens_to_ids("</s>")
    assert labels[:n_input] == [IGNORE] * n_input
    assert labels[n_input:] == ids[n_input:]
    assert encode(tok, seq["segments"], 5) == (ids[:5], labels[:5])


def test_masked_loss_is_the_hand_computed_one_and_untrained_tokens_get_no_gradient(base):
    tok = transformers.AutoTokenizer.from_pretrained(base)
    model = transformers.AutoModelForCausalLM.from_pretrained(base)
    rows = [encode(tok, sequence(a, b)["segments"], 4096) for a, b in [(1, 2), (30, 45), (7, 8)]]
    batch = collate(rows, tok.pad_token_id)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logits.retain_grad()
    loss = masked_loss(logits, batch["labels"])
    # By hand: -log p(next token) at each position whose next token is trained, averaged over those positions.
    logp = torch.log_softmax(logits.detach().double(), dim=-1)
    terms = [-logp[i, t, batch["labels"][i, t + 1]].item() for i in range(len(rows)) for t in range(logits.shape[1] - 1) if batch["labels"][i, t + 1] != IGNORE]
    assert len(terms) == int((batch["labels"][:, 1:] != IGNORE).sum())
    assert math.isclose(loss.item(), sum(terms) / len(terms), rel_tol=1e-5)
    loss.backward()
    untrained_next = batch["labels"][:, 1:] == IGNORE
    assert torch.count_nonzero(logits.grad[:, :-1][untrained_next]) == 0
    assert torch.count_nonzero(logits.grad[:, :-1][~untrained_next]) > 0
    assert torch.count_nonzero(logits.grad[:, -1]) == 0


def test_held_out_loss_falls_and_the_tuned_model_saves_in_transformers_format(base, tmp_path, capsys, monkeypatch):
    rng = random.Random(1)
    data = tmp_path / "tuning.jsonl"
    data.write_text("".join(json.dumps(sequence(rng.randrange(10), rng.randrange(10))) + "\n" for _ in range(120)), encoding="utf-8")
    out = tmp_path / "tuned"
    monkeypatch.setenv("MASTER_PORT", str(29600 + rng.randrange(300)))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert main(["--data", str(data), "--init-from", str(base), "--steps", "40", "--batch-size", "8", "--lr", "3e-3", "--held-out", "16", "--eval-every", "20", "--save-pretrained", str(out), "--seq-len", "256"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    held = [line["heldOutLoss"] for line in lines if "heldOutLoss" in line]
    assert len(held) == 3
    assert held[-1] < 0.6 * held[0], held
    assert lines[-1]["trainedTokens"] > 0 and lines[-1]["ranks"] == 1
    tuned = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert transformers.AutoTokenizer.from_pretrained(out).convert_tokens_to_ids("<QUE>") == SPECIAL.index("<QUE>")
    assert tuned.config.vocab_size == len(SPECIAL) + len(CHARS)
