"""Speech Commands SC10 / SC35 (raw and MFCC) on WAV folders + list files written with `wave`."""

import math
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, train_checked

from s4lab.data.base import MissingDataError
from s4lab.data.mfcc import dct_matrix, hz_to_mel, mel_filterbank, mel_to_hz, mfcc
from s4lab.data.speech_commands import (
    SC10_CLASSES,
    SC35_CLASSES,
    SpeechCommands,
    read_wav,
    stratified_split,
)

CLIPS_PER_WORD = 4


def write_wav(path: Path, samples: torch.Tensor, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.to(torch.int16).numpy().astype("<i2").tobytes())


TONE = 3000 * torch.sin(2 * math.pi * 440 * torch.arange(32000) / 16000)  # 440 Hz, 2 s


def clip(clip_id: int, n: int = 16000) -> torch.Tensor:
    """A 440 Hz burst of random loudness; its first sample is the clip's id (traced in splits)."""
    x = (TONE[:n] * torch.rand(1).item()).round()
    x[0] = clip_id
    return x


def write_speech_commands(root: Path, words=SC35_CLASSES) -> dict[str, int]:
    """`SpeechCommands/speech_commands_v0.02/<word>/<hash>_nohash_<k>.wav` + list files.

    Per word: CLIPS_PER_WORD full clips; "yes" also gets a short clip (12000 samples). For SC35 the
    lists put clip 0 of each word in validation and clip 1 in testing. Returns {rel path: id}.
    """
    torch.manual_seed(0)
    base = root / "SpeechCommands" / "speech_commands_v0.02"
    ids = {}
    for w, word in enumerate(words):
        for k in range(CLIPS_PER_WORD):
            rel = f"{word}/{k:08x}_nohash_{k}.wav"
            ids[rel] = 100 * w + k + 1
            write_wav(base / rel, clip(ids[rel]))
    ids["yes/short000_nohash_0.wav"] = 9999
    write_wav(base / "yes/short000_nohash_0.wav", clip(9999, n=12000))
    (base / "_background_noise_").mkdir()
    write_wav(base / "_background_noise_" / "white_noise.wav", clip(0, n=32000))
    val = [f"{word}/{0:08x}_nohash_0.wav" for word in words]
    test = [f"{word}/{1:08x}_nohash_1.wav" for word in words] + ["yes/short000_nohash_0.wav"]
    (base / "validation_list.txt").write_text("\n".join(val) + "\n")
    (base / "testing_list.txt").write_text("\n".join(test) + "\n")
    return ids


@pytest.fixture(scope="module")
def sc_root(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("sc")
    return root, write_speech_commands(root)


def setup_dm(root: Path, **kwargs) -> SpeechCommands:
    dm = SpeechCommands(data_dir=str(root / "SpeechCommands"), batch_size=4, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def clip_ids(dataset) -> list[int]:
    """Undo the z-score of sample 0 to recover each clip's id."""
    a0 = dataset.X[:, 0, 0].long()  # stored int16 audio, before normalization
    return sorted(a0.tolist())


def test_sc10_drops_short_clips_and_splits_70_15_15_stratified(sc_root):
    root, ids = sc_root
    dm = setup_dm(root)
    assert (dm.d_input, dm.d_output, dm.l_max) == (1, 10, 16000)
    n = 10 * CLIPS_PER_WORD  # the 12000-sample clip is dropped
    sizes = [len(dm.data_train), len(dm.data_val), len(dm.data_test)]
    assert sizes == [28, 6, 6]  # ⌊0.7 n⌋, then ⌊12 / 2⌋ / rest
    found = clip_ids(dm.data_train) + clip_ids(dm.data_val) + clip_ids(dm.data_test)
    sc10 = [v for rel, v in ids.items() if rel.split("/")[0] in SC10_CLASSES and v != 9999]
    assert sorted(found) == sorted(sc10)
    assert 9999 not in found and len(found) == n
    assert torch.bincount(dm.data_train.y, minlength=10).tolist().count(3) == 8  # 2.8 per word
    x, y = dm.data_train[0]
    assert x.shape == (16000, 1) and x.dtype == torch.float32 and y.dtype == torch.int64
    again = setup_dm(root)  # deterministic: sorted files, seeded generators
    assert clip_ids(again.data_val) == clip_ids(dm.data_val)


def test_sc35_pads_short_clips_and_splits_by_the_list_files(sc_root):
    root, ids = sc_root
    dm = setup_dm(root, all_classes=True)
    assert (dm.d_input, dm.d_output, dm.l_max) == (1, 35, 16000)
    val_ids = [ids[f"{w}/{0:08x}_nohash_0.wav"] for w in SC35_CLASSES]
    test_ids = [ids[f"{w}/{1:08x}_nohash_1.wav"] for w in SC35_CLASSES] + [9999]
    assert clip_ids(dm.data_val) == sorted(val_ids)
    assert clip_ids(dm.data_test) == sorted(test_ids)
    assert len(dm.data_train) == 35 * (CLIPS_PER_WORD - 2)
    labels = dict(zip(dm.data_test.X[:, 0, 0].tolist(), dm.data_test.y.tolist(), strict=True))
    assert labels[9999] == SC35_CLASSES.index("yes") == 16  # the official label order
    short = dm.data_test.X[dm.data_test.X[:, 0, 0] == 9999][0]
    assert short.shape == (16000, 1) and short[12000:].abs().sum() == 0  # zero-padded at the end


def test_raw_audio_is_z_scored_per_time_position_with_train_statistics(sc_root):
    root, _ = sc_root
    dm = setup_dm(root, all_classes=True)
    x = torch.stack([dm.data_train[i][0] for i in range(len(dm.data_train))])  # (n, 16000, 1)
    assert dm.data_train.mean.shape == (16000, 1)
    torch.testing.assert_close(x.mean(0), torch.zeros(16000, 1), atol=1e-4, rtol=0)
    sigma = dm.data_train.std  # unbiased, per position: x.std = σ / (σ + 1e-5)
    torch.testing.assert_close(x.std(0), sigma / (sigma + 1e-5), atol=1e-4, rtol=0)
    a = dm.data_test.X[0].float() / 2**15
    torch.testing.assert_close(
        dm.data_test[0][0], (a - dm.data_train.mean) / (dm.data_train.std + 1e-5)
    )


def test_mfcc_features_shape_and_per_coefficient_statistics(sc_root):
    root, _ = sc_root
    dm = setup_dm(root, mfcc=True)
    assert (dm.d_input, dm.d_output, dm.l_max) == (20, 10, 161)
    x, _ = dm.data_val[0]
    assert x.shape == (161, 20) and x.dtype == torch.float32
    assert dm.data_train.mean.shape == (1, 20)
    train = torch.stack([dm.data_train[i][0] for i in range(len(dm.data_train))])
    torch.testing.assert_close(train.mean((0, 1)), torch.zeros(20), atol=1e-4, rtol=0)


def test_mfcc_of_silence_and_dct_orthonormality():
    D = dct_matrix(64, 64)
    torch.testing.assert_close(D.T @ D, torch.eye(64, dtype=torch.float64))
    C = mfcc(torch.zeros(16000))
    assert C.shape == (161, 20)
    # log(0 + 1e-6) in every band: only the DC coefficient survives, = 64 log(1e-6) / sqrt(64)
    torch.testing.assert_close(C[:, 0], torch.full((161,), 8 * math.log(1e-6)))
    torch.testing.assert_close(C[:, 1:], torch.zeros(161, 19), atol=1e-4, rtol=0)


def loudest_mel_band(freq: float) -> int:
    """Band with the most energy for a 1 s pure tone, from all 64 MFCCs (the DCT inverts)."""
    t = torch.arange(16000, dtype=torch.float64) / 16000
    C = mfcc(torch.sin(2 * math.pi * freq * t).float(), n_mfcc=64)  # (161, 64)
    log_mel = C.double() @ dct_matrix(64, 64).T  # (161, 64)
    return log_mel[5:-5].mean(0).argmax().item()  # skip the reflect-padded edge frames


def test_pure_tone_peaks_in_the_mel_band_that_covers_it():
    F = mel_filterbank(101, 64, 16000)  # bins 80 Hz apart
    bands = []
    for freq in (320.0, 1040.0, 3040.0):  # tones on FFT bins 4, 13, 38
        band = loudest_mel_band(freq)
        k = round(freq / 80)
        assert F[k, band] > 0.5  # the tone's bin sits near the top of that triangle
        m = torch.linspace(0, hz_to_mel(torch.tensor(8000.0)).item(), 66, dtype=torch.float64)
        centre = mel_to_hz(m)[band + 1].item()
        assert abs(centre - freq) < 80  # the band's centre is within one FFT bin of the tone
        bands.append(band)
    assert bands[0] < bands[1] < bands[2]


def test_stratified_split_keeps_class_proportions():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    first, rest = stratified_split(y, 0.7, seed=0)
    assert len(first) == 70 and len(rest) == 30
    assert torch.bincount(y[first]).tolist() == [35, 21, 14]
    assert sorted(torch.cat([first, rest]).tolist()) == list(range(100))
    assert torch.equal(stratified_split(y, 0.7, seed=0)[0], first)
    assert not torch.equal(stratified_split(y, 0.7, seed=1)[0], first)


def test_cache_is_reused(sc_root):
    root, _ = sc_root
    setup_dm(root)
    entries = sorted((root / "SpeechCommands" / "cache").glob("sc10_raw-*.pt"))
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    setup_dm(root)
    assert entries[0].stat().st_mtime_ns == stamp


def test_missing_dataset_names_path_and_prepare_command(tmp_path):
    with pytest.raises(MissingDataError) as e:
        SpeechCommands(data_dir=str(tmp_path / "SpeechCommands")).prepare_data()
    assert str(tmp_path / "SpeechCommands" / "yes") in str(e.value)
    assert "python scripts/prepare_data.py speech-commands" in str(e.value)


def test_missing_list_file_for_sc35(tmp_path):
    base = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    for word in SC35_CLASSES:
        (base / word).mkdir(parents=True)
    (base / "validation_list.txt").write_text("")
    with pytest.raises(MissingDataError, match="testing_list.txt"):
        setup_dm(tmp_path, all_classes=True)


def test_bad_wav_files_name_the_file(tmp_path):
    path = tmp_path / "yes" / "a_nohash_0.wav"
    write_wav(path, clip(1))
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(ValueError, match="a_nohash_0.wav: corrupt or truncated"):
        read_wav(path)
    write_wav(path, clip(1, n=8000), rate=8000)
    with pytest.raises(ValueError, match="a_nohash_0.wav: expected mono 16-bit PCM at 16000 Hz"):
        read_wav(path)
    path.write_bytes(b"ID3 this is an mp3")
    with pytest.raises(ValueError, match="a_nohash_0.wav"):
        read_wav(path)
    write_wav(path, clip(1))
    assert read_wav(path).dtype == torch.int16 and read_wav(path)[0] == 1
    assert SC10_CLASSES[0] == "yes"


RAW_STEP = pytest.mark.slow  # L = 16000 plus the half-rate pass: ~6 s per step on a shared CPU


@pytest.mark.parametrize(
    "experiment",
    [
        pytest.param("sc/sc10_raw", marks=RAW_STEP),
        "sc/sc10_mfcc",
        pytest.param("sc/sc35_raw", marks=RAW_STEP),
    ],
)
def test_one_training_step_through_train(compose_train, sc_root, experiment):
    root, _ = sc_root
    cfg = compose_train(
        *TINY,
        "debug=fdr",
        f"experiment={experiment}",
        f"paths.data_dir={root}",
        "data.batch_size=4",
        "data.batch_size_eval=4",
    )
    train_checked(cfg)  # sc10_raw and sc35_raw also evaluate at half rate (task.eval_rates [1, 2])


def mfcc_reference(
    x: np.ndarray, sr: int = 16000, n_fft: int = 200, n_mels: int = 64, n_mfcc: int = 20
):
    """Slow float64 MFCC from the definitions: loops over frames, bins and bands."""
    hop = n_fft // 2
    padded = np.pad(x, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    n_freqs = n_fft // 2 + 1
    freqs = np.linspace(0, sr / 2, n_freqs)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    pts = 700 * (10 ** (np.linspace(0, mel(sr / 2), n_mels + 2) / 2595) - 1)
    fb = np.zeros((n_freqs, n_mels))
    for m in range(n_mels):
        lo, mid, hi = pts[m], pts[m + 1], pts[m + 2]
        for k, f in enumerate(freqs):
            fb[k, m] = max(0.0, min((f - lo) / (mid - lo), (hi - f) / (hi - mid)))
    out = []
    for start in range(0, len(padded) - n_fft + 1, hop):
        frame = padded[start : start + n_fft] * window
        power = np.abs(np.fft.rfft(frame)) ** 2
        log_mel = np.log(power @ fb + 1e-6)
        coeffs = [
            sum(log_mel[m] * np.cos(np.pi * k * (m + 0.5) / n_mels) for m in range(n_mels))
            * np.sqrt((1 if k == 0 else 2) / n_mels)
            for k in range(n_mfcc)
        ]
        out.append(coeffs)
    return np.array(out)


def test_mfcc_matches_a_slow_reference_from_the_definitions():
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(1600, generator=g, dtype=torch.float64)
    expected = torch.from_numpy(mfcc_reference(x.numpy()))
    assert expected.shape == (17, 20)  # 1 + 1600 // 100 centred frames
    torch.testing.assert_close(mfcc(x), expected, atol=1e-9, rtol=0)  # float64 end to end
    torch.testing.assert_close(mfcc(x.float()).double(), expected, atol=1e-4, rtol=0)
