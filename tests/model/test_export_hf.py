"""The HF export loads in stock transformers classes and computes the same logits."""

import pytest
import torch

from ponder.model.chat import Message, encode_prompt
from ponder.model.checkpoint import save_checkpoint
from ponder.model.export_hf import export_hf, from_hf_state_dict, hf_state_dict
from ponder.model.gpt import GPT
from tests.conftest import tiny_config

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("kv_heads", [4, 1])
def test_llama_export_matches_ponder_logits(tmp_path, tok, kv_heads):
    torch.manual_seed(3)
    model = GPT(tiny_config(tok.vocab_size, n_kv_heads=kv_heads)).eval()
    save_checkpoint(model, tok, tmp_path / "ckpt")
    export_hf(tmp_path / "ckpt", tmp_path / "hf")
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf").eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")

    text = "What is 347 * 29? Maya has 12 apples."
    assert hf_tok(text, add_special_tokens=False)["input_ids"] == tok.encode(text)
    ids = encode_prompt(tok, [Message("user", text)])
    chat = hf_tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
    assert hf_tok(chat, add_special_tokens=False)["input_ids"] == ids

    x = torch.tensor([ids, ids[::-1]])
    with torch.no_grad():
        ours, theirs = model(x), hf(x).logits
    assert (ours - theirs).abs().max().item() < 1e-4


def test_auto_model_class_loads_the_export(tmp_path, tiny_model, tok):
    save_checkpoint(tiny_model, tok, tmp_path / "ckpt")
    export_hf(tmp_path / "ckpt", tmp_path / "hf")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert type(model).__name__ == "LlamaForCausalLM"


@pytest.mark.parametrize("tied", [True, False])
def test_from_hf_state_dict_inverts_the_export_exactly(tok, tied):
    torch.manual_seed(4)
    model = GPT(tiny_config(tok.vocab_size, n_kv_heads=1, tie_embeddings=tied))
    back = from_hf_state_dict(hf_state_dict(model), len(model.blocks))
    expected = model.state_dict()
    assert set(back) == set(expected) and all(torch.equal(back[k], v) for k, v in expected.items())
    GPT(model.cfg).load_state_dict(back, strict=True)
