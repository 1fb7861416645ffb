"""The device-side front end of audio backbones: waveforms in, spectrogram images out."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones._base import AudioConfig


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max=None) -> torch.Tensor:
    """Triangular filters ``(n_freqs, n_mels)`` on the HTK mel scale (as torchaudio's
    ``melscale_fbanks`` with ``norm=None``)."""
    f_max = sample_rate / 2 if f_max is None else f_max

    def mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    mels = torch.linspace(mel(f_min), mel(f_max), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)
    slopes = hz[None, :] - freqs[:, None]  # (n_freqs, n_mels + 2)
    widths = hz[1:] - hz[:-1]
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(down, up), min=0).float()


class LogMel(nn.Module):
    """Waveform batches ``(n, samples)`` at ``config.sample_rate`` -> normalized log-mel
    images ``(n, 3, H, W)`` at ``config.input_size``.

    Power spectra of Hann windows (``window_seconds`` long, every ``hop_seconds``),
    ``n_mels`` HTK mel bands, ``log(mel + 1e-6)``, standardized by ``(x - mean) / (2 std)``
    (AST's scaling), resized to the image network's input (frequency up the height,
    time along the width) and repeated on three channels.

    Parameters
    ----------
    config : AudioConfig
    channels_last : bool
        Return channels-last tensors.
    dtype : torch.dtype
        Dtype of the output (the network's parameter dtype).
    """

    def __init__(self, config: AudioConfig, channels_last=False, dtype=torch.float32):
        super().__init__()
        self.window = int(round(config.window_seconds * config.sample_rate))
        self.hop = int(round(config.hop_seconds * config.sample_rate))
        self.n_fft = self.fft_size(config)
        self.size = tuple(config.input_size)
        self.interpolation = "bilinear" if config.image.interpolation == "nearest" else config.image.interpolation
        self.mean, self.std = float(config.mean), float(config.std)
        self.channels_last = channels_last
        self.dtype = dtype
        self.register_buffer("hann", torch.hann_window(self.window), persistent=False)
        self.register_buffer("mel", mel_filterbank(self.n_fft // 2 + 1, config.n_mels, config.sample_rate),
                             persistent=False)

    @staticmethod
    def fft_size(config: AudioConfig) -> int:
        """The FFT length: the window's, rounded up to a power of two."""
        return 1 << (int(round(config.window_seconds * config.sample_rate)) - 1).bit_length()

    @classmethod
    def min_samples(cls, config: AudioConfig) -> int:
        """The shortest clip the centred STFT takes (its reflected padding needs more samples
        than half the FFT length)."""
        return cls.fft_size(config) // 2 + 1

    def forward(self, x):
        x = x.to(torch.float32)
        spectrum = torch.stft(x, self.n_fft, hop_length=self.hop, win_length=self.window, window=self.hann,
                              center=True, return_complex=True)
        power = spectrum.real ** 2 + spectrum.imag ** 2  # (n, freqs, frames)
        logmel = torch.log(torch.einsum("nft,fm->nmt", power, self.mel) + 1e-6)
        image = ((logmel - self.mean) / (2 * self.std)).flip(1).unsqueeze(1)  # low frequencies at the bottom
        image = F.interpolate(image, size=self.size, mode=self.interpolation, align_corners=False)
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        return image.expand(-1, 3, -1, -1).to(self.dtype, memory_format=layout)


class EncoderFrontEnd(nn.Module):
    """Waveform batches ``(n, samples)`` at ``sample_rate`` -> an audio encoder's
    ``input_values``, made by the model's own feature extractor.

    The extractor is the Hugging Face one from the model folder (numpy, on the CPU):
    what the model was trained on, bit for bit, whichever model it is (per-clip
    normalization for wav2vec2, Kaldi filter banks for AST). It holds no parameters.

    Parameters
    ----------
    feature_extractor : callable
        The folder's ``AutoFeatureExtractor``.
    sample_rate : int
        The clips' rate (the extractor's own).
    """

    def __init__(self, feature_extractor, sample_rate: int):
        super().__init__()
        self.feature_extractor = feature_extractor
        self.sample_rate = int(sample_rate)
        self.dtype = torch.float32
        self.channels_last = False  # set by the networks' place(); inputs are not images

    def forward(self, x):
        clips = list(x.detach().to("cpu", torch.float32).numpy())
        values = self.feature_extractor(clips, sampling_rate=self.sample_rate, return_tensors="pt")["input_values"]
        return values.to(x.device, self.dtype)
