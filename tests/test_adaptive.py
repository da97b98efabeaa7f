"""AdaptiveEmbedding and AdaptiveSoftmax: the embedding equals a per-token loop, log_prob is
normalised, nll equals −log_prob[target] in values and gradients, ignore_index, torch's
AdaptiveLogSoftmaxWithLoss agrees on the untied no-projection case, tying shares Parameters
(counted once, gradients summed, state_dict round-trip), dropout only in training, half inputs give
float32 losses, and the official WT103 parameter count. CPU, float64 where exactness matters."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from s4lab.models.adaptive_input import AdaptiveEmbedding
from s4lab.models.adaptive_softmax import AdaptiveSoftmax

V, H, CUTOFFS, DIV = 50, 16, [10, 20, 35], 2
LEFTS, RIGHTS = [0, *CUTOFFS], [*CUTOFFS, V]

# softmax variants: (div_val, head_projection, bias)
CONFIGS = [(2, True, True), (2, False, False), (1, True, True), (2, True, False)]


def _randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter ~ N(0, 0.5²), so that zero-initialised ones (P_0, W_c) matter in tests."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _pair(div_val: int = DIV, seed: int = 0, dropout: float = 0.0, **kwargs):
    """A tied (embedding, softmax) pair in float64 with random parameters, in eval mode."""
    torch.manual_seed(seed)
    emb = AdaptiveEmbedding(V, H, CUTOFFS, div_val, dropout=dropout)
    softmax = AdaptiveSoftmax(H, V, CUTOFFS, div_val, dropout=dropout, **kwargs)
    softmax.tie(emb)
    _randomize(nn.ModuleDict({"emb": emb, "softmax": softmax}), seed)
    return emb.double().eval(), softmax.double().eval()


def _x(*shape: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, H, dtype=torch.float64, generator=g)


def _ids(*shape: int, seed: int = 2) -> torch.Tensor:
    """Random ids that hit every cluster (the first V positions are a permutation of the vocab)."""
    g = torch.Generator().manual_seed(seed)
    n = math.prod(shape)
    ids = torch.cat([torch.randperm(V, generator=g), torch.randint(0, V, (n,), generator=g)])
    return ids[:n].view(shape)


def embedding_ref(emb: AdaptiveEmbedding, x: torch.Tensor) -> torch.Tensor:
    """√H · P_i E_i[x − l_i], one token at a time."""
    out = []
    for token in x.reshape(-1).tolist():
        i = sum(token >= c for c in CUTOFFS)
        row = emb.weights[i][token - LEFTS[i]]  # (d_i,)
        out.append(math.sqrt(H) * (emb.projections[i] @ row if emb.div_val > 1 else row))
    return torch.stack(out).view(*x.shape, H)


@pytest.mark.parametrize("div_val", [1, 2])
def test_embedding_equals_reference(div_val):
    emb, _ = _pair(div_val)
    x = _ids(3, 20)
    torch.testing.assert_close(emb(x), embedding_ref(emb, x), atol=1e-12, rtol=1e-12)
    assert emb(x[:, 0]).shape == (3, H)  # (B,) -> (B, H)
    assert emb.cutoffs == [*CUTOFFS, V] and emb.vocab_size == V and emb.d_model == H
    assert len(emb.projections) == (0 if div_val == 1 else 4)
    assert [tuple(w.shape) for w in emb.weights] == [
        (r - l, H // div_val**i) for i, (l, r) in enumerate(zip(LEFTS, RIGHTS, strict=True))
    ]


def test_embedding_div_val_1_is_one_table():
    emb, _ = _pair(div_val=1)
    table = nn.Embedding.from_pretrained(torch.cat(list(emb.weights)))  # (V, H)
    x = _ids(4, 25)
    torch.testing.assert_close(emb(x), math.sqrt(H) * table(x), atol=1e-12, rtol=0)
    single = AdaptiveEmbedding(V, H, [], div_val=3).double()  # one cluster, no cutoffs
    assert len(single.projections) == 1 and single(x).shape == (4, 25, H)


def test_embedding_init_scale():
    torch.manual_seed(0)
    emb = AdaptiveEmbedding(2000, 64, [1000], div_val=2, init_scale=0.5)
    assert emb.weights[0].std().item() == pytest.approx(0.5 / 8, rel=0.05)  # d_0 = 64
    assert emb.weights[1].std().item() == pytest.approx(0.5 / math.sqrt(32), rel=0.05)
    assert emb.projections[1].std().item() == pytest.approx(0.5 / 8, rel=0.05)  # /√H


def test_embedding_bad_ids():
    emb, _ = _pair()
    for bad in (-1, V):
        x = _ids(2, 5)
        x[1, 3] = bad
        with pytest.raises(ValueError, match=rf"\[0, {V}\).*vocab_size={V}"):
            emb(x)
    with pytest.raises(ValueError, match="integer"):
        emb(torch.zeros(2, 5))


@pytest.mark.parametrize(
    ("cutoffs", "d_model", "match"),
    [
        ([20, 10], H, "strictly increasing"),
        ([10, 10, 20], H, "strictly increasing"),
        ([0, 10], H, "lie in"),
        ([10, V], H, "lie in"),
        ([10, 60], H, "lie in"),
        ([10, 20, 35], 12, "divisible"),  # 12 / 2^3 is not an integer
    ],
)
def test_bad_cutoffs(cutoffs, d_model, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveEmbedding(V, d_model, cutoffs, div_val=2)
    with pytest.raises(ValueError, match=match):
        AdaptiveSoftmax(d_model, V, cutoffs, div_val=2, tie_weights=False, tie_projs=False)


@pytest.mark.parametrize(("div_val", "head_projection", "bias"), CONFIGS)
def test_log_prob_is_normalised(div_val, head_projection, bias):
    _, softmax = _pair(div_val, head_projection=head_projection, bias=bias)
    x = _x(3, 7)
    logp = softmax.log_prob(x)
    assert logp.shape == (3, 7, V) and logp.dtype == torch.float64
    torch.testing.assert_close(
        logp.logsumexp(-1), torch.zeros(3, 7, dtype=torch.float64), atol=1e-12, rtol=0
    )
    assert torch.equal(softmax(x), logp)  # forward = log_prob


@pytest.mark.parametrize(("div_val", "head_projection", "bias"), CONFIGS)
def test_nll_equals_gathered_log_prob(div_val, head_projection, bias):
    _, softmax = _pair(div_val, head_projection=head_projection, bias=bias)
    x = _x(4, 20).requires_grad_()
    y = _ids(4, 20)
    w = torch.rand(4, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    params = [x, *softmax.parameters()]
    nll = softmax.nll(x, y)
    ref = -softmax.log_prob(x).gather(-1, y[..., None]).squeeze(-1)
    torch.testing.assert_close(nll, ref, atol=1e-12, rtol=1e-12)
    grads = torch.autograd.grad((w * nll).sum(), params)
    grads_ref = torch.autograd.grad((w * ref).sum(), params)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=1e-10)
    assert grads[1:] and all(g.abs().sum() > 0 for g in grads)  # every parameter is used


@pytest.mark.parametrize("ignore_index", [-100, 7])
def test_ignore_index(ignore_index):
    _, softmax = _pair()
    x = _x(3, 30).requires_grad_()
    y = _ids(3, 30)
    y[y == 7] = 8  # so that only the positions set below are ignored
    ignored = torch.zeros(3, 30, dtype=torch.bool)
    ignored[0, 5:] = ignored[2, ::3] = True
    y = y.masked_fill(ignored, ignore_index)
    nll = softmax.nll(x, y, ignore_index=ignore_index)
    assert torch.all(nll[ignored] == 0)
    kept = softmax.nll(x[~ignored], y[~ignored], ignore_index=ignore_index)
    torch.testing.assert_close(nll[~ignored], kept, atol=1e-12, rtol=1e-12)
    (grad,) = torch.autograd.grad(nll.sum(), x)
    assert torch.all(grad[ignored] == 0) and torch.all(grad[~ignored].abs().sum(-1) > 0)


def test_bad_targets():
    _, softmax = _pair()
    x = _x(2, 5)
    for bad in (-1, V):
        y = _ids(2, 5)
        y[0, 2] = bad
        with pytest.raises(ValueError, match=rf"targets.*\[0, {V}\)"):
            softmax.nll(x, y)
    with pytest.raises(ValueError, match="shape"):
        softmax.nll(x, _ids(2, 4))
    with pytest.raises(ValueError, match=f"H={H}"):
        softmax.log_prob(torch.zeros(2, 5, H + 1, dtype=torch.float64))


def test_matches_torch_adaptive_log_softmax():
    """No head projection, no biases, untied: Grave et al.'s adaptive softmax as torch builds it."""
    torch.manual_seed(0)
    ours = AdaptiveSoftmax(
        H, V, CUTOFFS, DIV, tie_weights=False, tie_projs=False, head_projection=False, bias=False
    )
    ours = _randomize(ours).double().eval()
    theirs = nn.AdaptiveLogSoftmaxWithLoss(H, V, CUTOFFS, div_value=float(DIV), head_bias=False)
    theirs = theirs.double().eval()
    with torch.no_grad():
        # torch's head rows: [shortlist, cluster 1, cluster 2, …] = [W_0; W_c]
        theirs.head.weight.copy_(torch.cat([ours.weights[0], ours.cluster_weight]))
        for i, tail in enumerate(theirs.tail, start=1):
            tail[0].weight.copy_(ours.tail_projs[i - 1].T)  # (d_i, H) = P_iᵀ
            tail[1].weight.copy_(ours.weights[i])  # (n_i, d_i) = W_i
    x, y = _x(60), _ids(60)
    torch.testing.assert_close(ours.log_prob(x), theirs.log_prob(x), atol=1e-12, rtol=1e-12)
    output, loss = theirs(x, y)
    torch.testing.assert_close(-ours.nll(x, y), output, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(ours.nll(x, y).mean(), loss, atol=1e-12, rtol=1e-12)


def test_tie_shares_parameters():
    emb, softmax = _pair()
    for i in range(4):
        assert softmax.weights[i] is emb.weights[i]
    for i in range(1, 4):
        assert softmax.tail_projs[i - 1] is emb.projections[i]
    assert softmax.head_proj is not None and softmax.head_proj is not emb.projections[0]
    both = nn.ModuleDict({"emb": emb, "softmax": softmax})
    own = [softmax.head_proj, softmax.cluster_weight, softmax.cluster_bias, *softmax.biases]
    n_emb = sum(p.numel() for p in emb.parameters())
    assert sum(p.numel() for p in both.parameters()) == n_emb + sum(p.numel() for p in own)
    # one optimizer step updates a shared tensor once: it appears once in parameters()
    assert len({id(p) for p in both.parameters()}) == len(list(both.parameters()))


def test_tied_gradient_is_the_sum_of_both_uses():
    """∂loss/∂E_i when tied = ∂/∂E_i (embedding use) + ∂/∂W_i (softmax use) of an untied copy."""
    emb, softmax = _pair()
    untied = AdaptiveSoftmax(H, V, CUTOFFS, DIV, tie_weights=False, tie_projs=False).double()
    untied.load_state_dict(softmax.state_dict())  # same values, own tensors
    x = _ids(3, 25)
    y = torch.roll(x, -1, dims=1)
    softmax.nll(emb(x), y).sum().backward()
    emb_copy = AdaptiveEmbedding(V, H, CUTOFFS, DIV).double()
    emb_copy.load_state_dict(emb.state_dict())
    untied.nll(emb_copy(x), y).sum().backward()
    for i in range(4):
        expected = emb_copy.weights[i].grad + untied.weights[i].grad
        torch.testing.assert_close(emb.weights[i].grad, expected, atol=1e-12, rtol=1e-10)
        assert softmax.weights[i].grad is emb.weights[i].grad
    for i in range(1, 4):
        expected = emb_copy.projections[i].grad + untied.tail_projs[i - 1].grad
        torch.testing.assert_close(emb.projections[i].grad, expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize(
    ("emb_args", "match"),
    [
        ((V + 1, H, CUTOFFS, DIV), "vocab size"),
        ((V, 2 * H, CUTOFFS, DIV), "d_model"),
        ((V, H, [10, 20, 30], DIV), "cutoffs"),
        ((V, H, CUTOFFS, 1), "div_val"),
    ],
)
def test_tie_mismatch(emb_args, match):
    softmax = AdaptiveSoftmax(H, V, CUTOFFS, DIV)
    with pytest.raises(ValueError, match=match):
        softmax.tie(AdaptiveEmbedding(*emb_args))
    with pytest.raises(ValueError, match="AdaptiveEmbedding"):
        softmax.tie(nn.Embedding(V, H))


def test_untied_but_required_raises():
    x = torch.zeros(2, 3, H)
    for kwargs in ({"tie_weights": True}, {"tie_weights": False, "tie_projs": True}):
        softmax = AdaptiveSoftmax(H, V, CUTOFFS, DIV, **kwargs)
        with pytest.raises(RuntimeError, match=r"tie\(embedding\).*model.embedding=adaptive"):
            softmax(x)
        with pytest.raises(RuntimeError, match="never called"):
            softmax.nll(x, torch.zeros(2, 3, dtype=torch.long))
    # div_val = 1 has no projections: tie_projs alone needs no embedding
    AdaptiveSoftmax(H, V, CUTOFFS, 1, tie_weights=False, tie_projs=True)(x)


def test_state_dict_round_trip():
    emb, softmax = _pair(seed=0)
    state = nn.ModuleDict({"emb": emb, "softmax": softmax}).state_dict()
    fresh_emb, fresh_softmax = _pair(seed=5)
    fresh = nn.ModuleDict({"emb": fresh_emb, "softmax": fresh_softmax})
    x = _ids(3, 25)
    y = torch.roll(x, -1, dims=1)
    assert not torch.equal(fresh_softmax.nll(fresh_emb(x), y), softmax.nll(emb(x), y))
    fresh.load_state_dict(state)
    assert torch.equal(fresh_softmax.nll(fresh_emb(x), y), softmax.nll(emb(x), y))
    assert fresh_softmax.weights[2] is fresh_emb.weights[2]  # still tied after loading


def test_dropout_only_in_training():
    emb, softmax = _pair(dropout=0.5)
    x = _ids(3, 25)
    y = torch.roll(x, -1, dims=1)
    eval_nll = softmax.nll(emb(x), y)
    assert torch.equal(softmax.nll(emb(x), y), eval_nll)  # eval: deterministic
    emb_ref, softmax_ref = _pair(dropout=0.0)
    torch.testing.assert_close(eval_nll, softmax_ref.nll(emb_ref(x), y), atol=0, rtol=0)
    emb.train()
    assert not torch.allclose(emb(x), emb.eval()(x))
    softmax.train()
    h = emb(x)
    assert not torch.allclose(softmax.nll(h, y), softmax.eval().nll(h, y))
    # div_val = 1: no projection, so the softmax has nowhere to apply dropout
    _, plain = _pair(div_val=1, dropout=0.5)
    h = _x(3, 25)
    assert torch.equal(plain.train().nll(h, y), plain.eval().nll(h, y))


def test_half_input_gives_float32_loss():
    emb, softmax = _pair()
    emb, softmax = emb.float(), softmax.float()
    x = _ids(3, 25)
    y = torch.roll(x, -1, dims=1)
    h = emb(x)
    expected = softmax.nll(h, y)
    for dtype in (torch.float16, torch.bfloat16):
        nll = softmax.nll(h.to(dtype), y)
        assert nll.dtype == torch.float32
        torch.testing.assert_close(nll, softmax.nll(h.to(dtype).float(), y), atol=0, rtol=0)
        assert softmax.log_prob(h.to(dtype)).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h_bf16 = emb(x)
        nll = softmax.nll(h_bf16, y)
    assert h_bf16.dtype == torch.bfloat16 and nll.dtype == torch.float32
    torch.testing.assert_close(nll, expected, atol=0.1, rtol=0.05)


def test_wt103_parameter_count():
    """Official S4 WT103: V = 267735, H = 1024, cutoffs [19997, 39997, 199997], div_val 4."""
    V_, H_, cutoffs = 267735, 1024, [19997, 39997, 199997]
    with torch.device("meta"):
        emb = AdaptiveEmbedding(V_, H_, cutoffs, div_val=4)
        softmax = AdaptiveSoftmax(H_, V_, cutoffs, div_val=4)
    softmax.tie(emb)
    n = sum(p.numel() for p in nn.ModuleDict({"emb": emb, "softmax": softmax}).parameters())
    embeddings = 19997 * 1024 + 20000 * 256 + 160000 * 64 + 67738 * 16
    projections = 1024 * (1024 + 256 + 64 + 16)
    assert embeddings == 36_920_736 and projections == 1_392_640
    assert n == embeddings + projections + 1024 * 1024 + V_ + 3 * 1024 + 3


@pytest.mark.parametrize("tied", [True, False])
def test_every_parameter_gets_a_gradient_when_no_target_reaches_a_tail(tied: bool):
    """DDP (find_unused_parameters=False) needs a gradient for every parameter at every step,
    also when a batch has no target in some tail cluster."""
    if tied:
        _, softmax = _pair()
    else:
        softmax = AdaptiveSoftmax(H, V, CUTOFFS, DIV, tie_weights=False, tie_projs=False).double()
    target = torch.randint(0, CUTOFFS[0], (4, 6))  # the shortlist only
    softmax.nll(_x(4, 6), target).sum().backward()
    missing = [name for name, p in softmax.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
