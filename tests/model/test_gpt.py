import pytest
import torch

from ponder.model.config import ModelConfig
from ponder.model.gpt import GPT, KVCache, causal_attention
from tests.conftest import tiny_config


def test_cached_decoding_matches_a_full_forward(tiny_model):
    torch.manual_seed(1)
    tokens = torch.randint(5, 300, (3, 20))
    full = tiny_model(tokens)  # (B, T, V)
    cache = KVCache(tiny_model.cfg, 3, 20)
    with torch.no_grad():
        step = [tiny_model(tokens[:, :12], None, cache, 0, torch.ones(3, 1, 12, 12, dtype=torch.bool).tril())]
        for t in range(12, 20):
            pos = torch.full((3, 1), t)
            step.append(tiny_model(tokens[:, t : t + 1], pos, cache, t, torch.ones(3, 1, 1, t + 1, dtype=torch.bool)))
    torch.testing.assert_close(torch.cat(step, dim=1), full, atol=1e-5, rtol=1e-4)


def test_last_only_returns_the_last_position(tiny_model):
    tokens = torch.randint(5, 300, (2, 9))
    torch.testing.assert_close(tiny_model(tokens, last_only=True)[:, 0], tiny_model(tokens)[:, -1])


def test_grouped_query_attention_shapes(tok):
    cfg = tiny_config(tok.vocab_size, n_heads=4, n_kv_heads=1)
    model = GPT(cfg)
    assert model(torch.randint(0, 100, (2, 7))).shape == (2, 7, cfg.vocab_size)
    assert cfg.num_params() == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "bad, message",
    [(dict(dim=65), "divisible"), (dict(n_kv_heads=3), "divisible"), (dict(n_layers=0), "positive")],
)
def test_invalid_shapes_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{**dict(vocab_size=100, dim=64, n_heads=4, n_kv_heads=2), **bad})


def test_bf16_cpu_attention_matches_the_flash_kernel_forward_and_backward():
    """On a CPU, bf16 causal attention takes the matmul path (the query heads folded onto their kv
    head); it must agree with fp32 scaled_dot_product_attention within bf16's precision."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, h, 9, 16, generator=g) for h in (4, 2, 2))
    grad = torch.randn(2, 4, 9, 16, generator=g)
    results = []
    for dtype in (torch.float32, torch.bfloat16):
        leaves = [t.detach().to(dtype).requires_grad_() for t in (q, k, v)]
        out = causal_attention(*leaves) if dtype == torch.bfloat16 else torch.nn.functional.scaled_dot_product_attention(
            *leaves, is_causal=True, enable_gqa=True)
        out.backward(grad.to(dtype))
        results.append([out.float(), *(t.grad.float() for t in leaves)])
    for reference, fast in zip(*results):
        torch.testing.assert_close(fast, reference, atol=0.05, rtol=0.05)
