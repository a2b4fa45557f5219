"""A process reward model (PRM): a ponder checkpoint that rates each reasoning step.

    labels.py   Math-Shepherd labels: a step is as good as the share of policy completions
                from it whose final answer verifies
    model.py    the PRM itself: P("+") read at every step end, batched; load / save
    train.py    `ponder train --stage prm`: label, fine-tune, log, save
    scorer.py   the `prm` scorer for best-of-n and weighted voting, loaded lazily

A step is a line of reasoning (the bundled model writes one calculation per line) plus, for a
finished candidate, a last step that runs from its last line through `</think>` and the answer.
PRM-guided step-level search lives with the other strategies, in `ponder.think.beam`.
"""
