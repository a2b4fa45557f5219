"""ponder's Dr.GRPO loss against TRL's own `GRPOTrainer._compute_loss` on one real rollout batch:
the same weights (TRL's is the HF export) and the same samples must give the same loss and the
same gradient. Skipped unless TRL is installed (`pip install -e '.[bench]'`, as bench/rl_vs_trl.py
needs): CI does not install it, so run this file after changing `ponder/rl/algos.py`.
"""

from __future__ import annotations

import pytest
import torch

from ponder.engine.native import NativeEngine
from ponder.engine.spec import BUNDLED
from ponder.model.chat import Message
from ponder.model.checkpoint import load_checkpoint
from ponder.model.export_hf import export_hf, from_hf_state_dict
from ponder.rl.algos import dr_grpo_advantages, policy_loss
from ponder.rl.rollout import build_sequences, draw_groups, step_problems, token_logprobs
from ponder.tasks.mix import DEFAULT_FAMILIES

trl = pytest.importorskip("trl")
G, MAX_LEN, EPS_LOW, EPS_HIGH, TEMPERATURE = 4, 256, 0.2, 0.28, 1.5  # hot: the samples differ


def rollout_batch(model, tok):
    """One step's samples with advantages from a reward that tells every distinct sample apart
    (shorter is better), so the loss is not zero wherever a group's samples differ at all."""
    problems = step_problems(0, 0, 4, DEFAULT_FAMILIES, 2, 4)
    engine = NativeEngine(model.eval(), tok, max_batch=64)
    completions = draw_groups(engine, problems, G, MAX_LEN, TEMPERATURE, 0, 0)
    rewards = torch.tensor([-c.completion_tokens / 100 for c in completions]).view(-1, G)
    prompt_ids = [engine.encode([Message("user", p.prompt)]) for p in problems for _ in range(G)]
    return problems, prompt_ids, completions, dr_grpo_advantages(rewards).flatten()


def trl_inputs(prompt_ids, completions, advantages, truncated, pad):
    """TRL's batch layout: prompts left-padded, completions right-padded, truncated ones masked out."""
    b, p_width, c_width = len(prompt_ids), max(map(len, prompt_ids)), max(len(c.token_ids) for c in completions)
    prompt, prompt_mask = torch.full((b, p_width), pad), torch.zeros(b, p_width, dtype=torch.long)
    comp, comp_mask = torch.full((b, c_width), pad), torch.zeros(b, c_width, dtype=torch.long)
    for i, (ids, c) in enumerate(zip(prompt_ids, completions)):
        prompt[i, p_width - len(ids):], prompt_mask[i, p_width - len(ids):] = torch.tensor(ids), 1
        comp[i, : len(c.token_ids)], comp_mask[i, : len(c.token_ids)] = torch.tensor(c.token_ids), int(not truncated[i])
    return dict(prompt_ids=prompt, prompt_mask=prompt_mask, completion_ids=comp, completion_mask=comp_mask,
                advantages=advantages, num_items_in_batch=comp_mask.sum())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")  # TRL's and transformers' deprecation notices
def test_ponder_dr_grpo_loss_and_gradient_equal_trls(tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    model, tok = load_checkpoint(BUNDLED)
    problems, prompt_ids, completions, advantages = rollout_batch(model, tok)
    assert advantages.abs().sum() > 0
    truncated = [c.finish_reason == "length" for c in completions]

    # ponder: the loss `update` takes for a minibatch of these rows (truncated rows masked, as TRL does).
    seqs = build_sequences(prompt_ids, completions, tok.special.pad)
    mask = seqs.mask * torch.tensor([0.0 if t else 1.0 for t in truncated])[:, None]
    model.train()
    logp = token_logprobs(model, seqs.tokens, TEMPERATURE, 64, seqs.widths)
    ours = policy_loss(logp, logp.detach(), advantages, mask, aggregation="constant_norm", eps_low=EPS_LOW,
                       eps_high=EPS_HIGH, max_len=MAX_LEN).loss
    ours.backward()

    hf_dir = export_hf(BUNDLED, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    config = GRPOConfig(output_dir=str(tmp_path / "trl"), use_cpu=True, bf16=False, fp16=False,  # TRL's default: bf16
                        per_device_train_batch_size=len(completions),
                        num_generations=G, max_completion_length=MAX_LEN, temperature=TEMPERATURE, loss_type="dr_grpo",
                        scale_rewards="none", epsilon=EPS_LOW, epsilon_high=EPS_HIGH, beta=0.0,
                        mask_truncated_completions=True, report_to="none", use_vllm=False)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}]} for p in problems])
    trainer = GRPOTrainer(model=hf, reward_funcs=lambda completions, **_: [0.0] * len(completions), args=config,
                          train_dataset=data, processing_class=AutoTokenizer.from_pretrained(hf_dir))
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which this call bypasses
    trainer.model.train()
    theirs = trainer._compute_loss(trainer.model, trl_inputs(prompt_ids, completions, advantages, truncated,
                                                              tok.special.pad))
    theirs.backward()

    assert ours.item() != 0.0 and abs(ours.item() - theirs.item()) < 1e-6 * max(1.0, abs(ours.item()))
    grads = from_hf_state_dict({k: p.grad for k, p in trainer.model.named_parameters()}, len(model.blocks))
    for name, p in model.named_parameters():
        cosine = torch.nn.functional.cosine_similarity(p.grad.flatten(), grads[name].flatten(), dim=0)
        assert cosine > 0.9999, (name, float(cosine))
        assert torch.allclose(p.grad.norm(), grads[name].norm(), rtol=1e-3), name
