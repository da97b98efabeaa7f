"""Language modeling: next-token cross-entropy, perplexity, and bits per byte where it applies.

  logits = head(model(x))                 head: per position (LinearHead), (B, L, vocab)
  loss = −(1/T) Σ_t log p(y_t | x_≤t)    (nats per token, averaged over all tokens of the epoch)
An AdaptiveSoftmax head gives −log p(y_t | x_≤t) per target without full-vocabulary logits
(WT103); it is tied to the backbone's AdaptiveEmbedding when built, and logs no accuracy.
  ppl  = exp(loss)
  bpb  = loss / ln 2 / bytes_per_token    (when the datamodule defines `bytes_per_token`)
  acc  = fraction of targeted positions whose argmax is the target
Batches are (x, y), both (B, L) int64: y = x shifted by one, or per-position targets with
IGNORE_INDEX (-100) where nothing is scored (the synthetic tasks). Each stage's epoch metrics are
logged in that stage's own epoch-end hook (validation also ends the tracked test split's epoch).
Generation: setup_step(), then forward_with_state(prompt (B, L)) -> logits, state (the prompt
in parallel) or default_state(B), then step(token (B,), state) -> logits (B, vocab).
What decoding needs travels in the checkpoint (checkpoint["s4lab"]["tokens"]): the datamodule's
`vocab` (token strings) or its `image_shape` and `start_token` (pixel tokens).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from s4lab.data.base import DataSizes
from s4lab.models.adaptive_softmax import AdaptiveSoftmax
from s4lab.tasks.base import CHECKPOINT_KEY, STAGES, SequenceTask

IGNORE_INDEX = -100  # targets with this value are not scored (F.cross_entropy's default)


class LanguageModel(SequenceTask):
    """Logs {stage}/loss per step or epoch; {stage}/ppl, {stage}/acc (+ {stage}/bpb) per epoch."""

    def __init__(
        self,
        model: Callable[..., nn.Module],
        head: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str = "val/loss",
    ) -> None:
        super().__init__(model, head, optimizer, scheduler, monitor)
        self.bytes_per_token: float | None = None
        self.tokens: dict[str, Any] | None = None  # vocab, or image_shape + start_token
        self.nll = nn.ModuleDict({f"{stage}_nll": MeanMetric() for stage in STAGES})
        self.acc = nn.ModuleDict({f"{stage}_acc": MeanMetric() for stage in STAGES})

    def build(self, sizes: DataSizes) -> None:
        """Build backbone and head; an adaptive softmax is tied to the adaptive input embedding."""
        built = self.sizes is not None
        super().build(sizes)
        if not built and isinstance(self.head, AdaptiveSoftmax) and self.head.needs_tie:
            self.head.tie(self.model.encoder)

    def setup_data(self, data: Any) -> None:
        """Read `bytes_per_token` (byte-level bpb) and the decoding facts from the datamodule."""
        self.bytes_per_token = getattr(data, "bytes_per_token", None)
        self.tokens = token_facts(data)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint[CHECKPOINT_KEY]["tokens"] = self.tokens

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.tokens = checkpoint.get(CHECKPOINT_KEY, {}).get("tokens", self.tokens)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L) token ids -> logits (B, L, vocab)."""
        return self.head(self.model(x))

    def shared_step(self, batch: Sequence[Tensor], stage: str) -> Tensor:
        x, y = batch[0], batch[1]
        scored = y != IGNORE_INDEX
        n = int(scored.sum())
        features = self.model(x)  # (B, L, H)
        if isinstance(self.head, AdaptiveSoftmax):
            nll = self.head.nll(features, y, ignore_index=IGNORE_INDEX)  # (B, L), 0 where ignored
            loss = nll.sum() / max(n, 1)
        else:
            logits = self.head(features)  # (B, L, vocab)
            loss = F.cross_entropy(
                logits.flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE_INDEX
            )
            correct = (logits.argmax(-1) == y)[scored].float()
            self.acc[f"{stage}_acc"].update(correct.mean(), weight=n)
        self.nll[f"{stage}_nll"].update(loss.detach(), weight=n)
        self.log_metric(f"{stage}/loss", loss, n)
        return loss

    def log_epoch(self, stage: str) -> None:
        """Turn one stage's token-weighted mean NLL into ppl (and bpb), log its acc, reset both."""
        nll_metric, acc_metric = self.nll[f"{stage}_nll"], self.acc[f"{stage}_acc"]
        if nll_metric.update_count == 0:
            return  # e.g. no tracked test split this epoch
        nll = nll_metric.compute()
        self.log(f"{stage}/ppl", torch.exp(nll), add_dataloader_idx=False)
        if acc_metric.update_count:  # not with an adaptive softmax (no full logits)
            self.log(f"{stage}/acc", acc_metric.compute(), add_dataloader_idx=False)
        if self.bytes_per_token:
            bpb = nll / math.log(2) / self.bytes_per_token
            self.log(f"{stage}/bpb", bpb, add_dataloader_idx=False)
        nll_metric.reset()
        acc_metric.reset()

    def on_train_epoch_end(self) -> None:
        self.log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self.log_epoch("val")
        self.log_epoch("test")  # the test split tracked next to val (dataloader 1)

    def on_test_epoch_end(self) -> None:
        self.log_epoch("test")

    def setup_step(self) -> None:
        """Prepare the backbone for token-by-token generation."""
        self.model.setup_step()

    def default_state(self, batch_size: int) -> Any:
        """Zero recurrent state of the backbone: (t = 0, one entry per residual layer)."""
        return self.model.default_state(batch_size)

    def forward_with_state(self, x: Tensor) -> tuple[Tensor, Any]:
        """x (B, L) ids -> logits (B, L, vocab) and the state after them (L steps' worth)."""
        features, state = self.model.forward_with_state(x)  # (B, L, H)
        return self.head(features), state

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One token x (B,) -> next-token logits (B, vocab), next state; equals forward()."""
        features, state = self.model.step(x, state)  # (B, H)
        return self.head(features), state


def token_facts(data: Any) -> dict[str, Any] | None:
    """What decoding needs from a datamodule: {"vocab": [str]} (text), {"image_shape": [h, w],
    "start_token": id} (pixels), or None (bare ids)."""
    vocab = getattr(data, "vocab", None)
    if vocab is not None:
        return {"vocab": list(getattr(vocab, "itos", vocab))}  # a tokens.Vocab or a list
    shape = getattr(data, "image_shape", None)
    if shape is not None:
        return {"image_shape": list(shape), "start_token": int(data.start_token)}
    return None
