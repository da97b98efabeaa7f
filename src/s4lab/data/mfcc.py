"""MFCC features in torch, with the conventions of torchaudio.transforms.MFCC (log_mels=True).

Notation: x audio (..., T) at rate sr; n_fft, hop = n_fft // 2, periodic Hann window of n_fft.
    S[f, t] = |STFT(x)[f, t]|²       centered reflect-padded frames, (n_fft // 2 + 1, 1 + T // hop)
    mel(f) = 2595 log10(1 + f / 700)  (HTK); n_mels + 2 points equally spaced in mel over [0, sr/2]
    F[f, m] = max(0, min((f − f_m) / (f_{m+1} − f_m), (f_{m+2} − f) / (f_{m+2} − f_{m+1})))
    M = log(S^T F + 1e-6)              (t, n_mels)
    C[t, k] = Σ_m M[t, m] D[m, k],     D[m, k] = cos(π k (m + 1/2) / n_mels) · (√(1/n_mels) if k = 0
                                                                               else √(2/n_mels))
The official Speech Commands setup uses sr 16000, n_fft 200, n_mels 64, n_mfcc 20: (161, 20) per
16000-sample clip. With 101 FFT bins some of the 64 triangles fall between bins and stay zero.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def hz_to_mel(f: Tensor) -> Tensor:
    """HTK mel scale."""
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz(m: Tensor) -> Tensor:
    """Inverse of `hz_to_mel`."""
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> Tensor:
    """Triangular filters F (n_freqs, n_mels), float64, on bins 0..sr/2, equally spaced in mel."""
    f = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)  # (n_freqs,)
    m_max = hz_to_mel(torch.tensor(sample_rate / 2, dtype=torch.float64))
    f_pts = mel_to_hz(torch.linspace(0.0, float(m_max), n_mels + 2, dtype=torch.float64))
    df = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts[None, :] - f[:, None]  # (n_freqs, n_mels + 2)
    rise = -slopes[:, :-2] / df[:-1]  # (f − f_m) / (f_{m+1} − f_m)
    fall = slopes[:, 2:] / df[1:]  # (f_{m+2} − f) / (f_{m+2} − f_{m+1})
    return torch.clamp(torch.minimum(rise, fall), min=0.0)


def dct_matrix(n_mfcc: int, n_mels: int) -> Tensor:
    """Orthonormal DCT-II basis D (n_mels, n_mfcc), float64."""
    m = torch.arange(n_mels, dtype=torch.float64)[:, None]
    k = torch.arange(n_mfcc, dtype=torch.float64)[None, :]
    D = torch.cos(math.pi / n_mels * (m + 0.5) * k) * math.sqrt(2.0 / n_mels)
    D[:, 0] /= math.sqrt(2.0)
    return D


def mfcc(
    x: Tensor, sample_rate: int = 16000, n_mfcc: int = 20, n_fft: int = 200, n_mels: int = 64
) -> Tensor:
    """MFCC of audio x (..., T) -> (..., 1 + T // (n_fft // 2), n_mfcc)."""
    window = torch.hann_window(n_fft, periodic=True, dtype=x.dtype, device=x.device)
    lead = x.shape[:-1]
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]),
        n_fft=n_fft,
        hop_length=n_fft // 2,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )  # (N, n_fft // 2 + 1, frames)
    power = spec.abs().pow(2).transpose(1, 2)  # (N, frames, n_freqs)
    F = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate).to(x)  # (n_freqs, n_mels)
    log_mel = torch.log(power @ F + 1e-6)  # (N, frames, n_mels)
    C = log_mel @ dct_matrix(n_mfcc, n_mels).to(x)  # (N, frames, n_mfcc)
    return C.reshape(*lead, *C.shape[1:])
