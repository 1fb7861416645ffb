"""Sound inputs: waveforms and sound files, validated once, read as fixed-length clips.

Accepted inputs (for an audio backbone):

* waveforms: a list of 1-D float arrays (clips of any lengths), or a 2-D float array
  ``(n, samples)``, at the estimator's ``sample_rate``; samples are float amplitudes
  (``[-1, 1]`` as sound files decode). Integer PCM is refused (its scale is not known:
  divide int16 by 32768), so are NaN and infinity, empty clips, 3-D arrays, and one clip
  without a batch axis;
* sound files: a list (or 1-D array, Series, one-column frame) of paths to ``.wav``,
  ``.flac``, ``.ogg`` or ``.mp3`` files, read with ``soundfile`` at their own rate;
  several channels are averaged.

Every clip is resampled to the backbone's rate (polyphase, ``scipy.signal.resample_poly``)
and made ``clip_seconds`` long: a shorter clip is padded with silence at its end, a
longer one keeps its middle ``clip_seconds`` (the policy is the same in ``fit`` and
``predict``, so a model sees its clips as it was trained on them). A file is keyed in
the feature cache by its bytes, a waveform by its samples and rate.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .decoding import digest, read_file
from .inputs import InputSignature, path_column
from .sources import MAX_LISTED, unusable_images, workers

def _soundfile():
    try:
        import soundfile
    except ImportError as exc:
        raise ImportError("sound files need the soundfile package: pip install 'sktransfer[audio]'") from exc
    return soundfile


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` at ``rate`` Hz resampled to ``target`` Hz (polyphase, anti-aliased)."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly

    ratio = Fraction(int(target), int(rate))
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


def fit_clip(wave: np.ndarray, samples: int) -> np.ndarray:
    """``wave`` made ``samples`` long: padded with silence at its end, or its middle kept."""
    if len(wave) >= samples:
        start = (len(wave) - samples) // 2
        return wave[start:start + samples]
    return np.pad(wave, (0, samples - len(wave)))


class AudioSource:
    """Validated clips, read as ``(k, samples)`` float32 batches at ``sample_rate``.

    Parameters
    ----------
    kind : {"waveforms", "sound files"}
    items : list
        Float32 arrays (waveforms, at ``given_rate``) or paths.
    given_rate : int or None
        The waveforms' rate (None for files: each has its own).
    sample_rate : int
        The backbone's rate.
    samples : int
        Samples per clip, at ``sample_rate``.
    """

    def __init__(self, kind, items, given_rate, sample_rate=16000, samples=32000):
        self.kind = kind
        self.items = items
        self.given_rate = given_rate
        self.sample_rate = sample_rate
        self.samples = samples
        self.decoded_digests = None

    def __len__(self) -> int:
        return len(self.items)

    def configured(self, sample_rate: int, samples: int) -> "AudioSource":
        """The same clips read at ``sample_rate``, ``samples`` long (the backbone's config)."""
        return AudioSource(self.kind, self.items, self.given_rate, sample_rate, samples)

    def keyed(self) -> "AudioSource":
        """A view keeping, for every file it decodes, the digest of the bytes decoded (as
        :meth:`~sktransfer.data.sources.ImageSource.keyed`)."""
        view = self.configured(self.sample_rate, self.samples)
        view.decoded_digests = {} if self.kind == "sound files" else None
        return view

    def _clip(self, index):
        """Clip ``index`` at the backbone's rate and length, or the exception naming why not."""
        try:
            if self.kind == "waveforms":
                wave, rate = self.items[index], self.given_rate
            else:
                data = read_file(self.items[index], index, "sound")
                wave, rate = decode_sound(data, self.items[index], index)
                if self.decoded_digests is not None:
                    self.decoded_digests[int(index)] = digest(b"file:", data)
            return fit_clip(resample(wave, rate, self.sample_rate), self.samples)
        except (OSError, ValueError) as exc:
            return exc

    def read(self, indices) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        # files decode and waveforms resample on the shared pool; waveforms at the backbone's
        # rate are only cut or padded: inline, no thread to wake
        pooled = len(indices) > 1 and (self.kind != "waveforms" or self.given_rate != self.sample_rate)
        clips = list(workers().map(self._clip, indices)) if pooled else [self._clip(i) for i in indices]
        failed = [(int(i), c) for i, c in zip(indices, clips) if isinstance(c, Exception)]
        if failed:
            raise unusable_images(failed[:MAX_LISTED], len(self), "clips")
        return torch.from_numpy(np.stack(clips).astype(np.float32))

    def digests(self) -> list:
        """A digest per clip: a file's bytes; a waveform's samples and rate."""
        if self.kind == "waveforms":
            tag = f"wave:{self.given_rate}".encode()
            return [digest(tag, np.ascontiguousarray(w).data) for w in self.items]

        def one(index):
            try:
                return digest(b"file:", read_file(self.items[index], index, "sound"))
            except (OSError, ValueError) as exc:
                return exc

        found = list(workers().map(one, range(len(self.items))))
        problems = [(i, d) for i, d in enumerate(found) if isinstance(d, Exception)]
        if problems:
            raise unusable_images(problems, len(self), "clips")
        return found


def decode_sound(data: bytes, path, index) -> tuple[np.ndarray, int]:
    """The mono float32 samples of a sound file's bytes, and its rate."""
    soundfile = _soundfile()
    try:
        wave, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 -- libsndfile's errors come in several types
        raise ValueError(f"X[{index}]: cannot read sound file {str(path)!r}: {exc}") from None
    if len(wave) == 0:
        raise ValueError(f"X[{index}]: sound file {str(path)!r} holds no samples")
    wave = wave.mean(axis=1)
    if not np.isfinite(wave).all():
        raise ValueError(f"X[{index}]: sound file {str(path)!r} holds NaN or infinite samples")
    return wave, int(rate)


def validate_audio(X, sample_rate, owner: str, what: str = "X") -> AudioSource:
    """Check ``X`` as clips (module docs); errors name the first bad item's index."""
    paths = path_column(X)
    if paths is None and isinstance(X, (list, tuple, np.ndarray)) and len(X) and np.ndim(X[0]) == 0 and (
            isinstance(X[0], (str, os.PathLike))):
        paths = list(X)  # a list or 1-D array of paths
    if paths is not None:
        return _sound_files(paths, what)
    if isinstance(X, (str, os.PathLike)):
        raise TypeError(f"{what} is a single path; pass a list of paths, e.g. [path]")
    if torch.is_tensor(X):
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 1:
            raise ValueError(f"{what} is one 1-D clip of {len(X)} samples; pass a batch of clips, "
                             f"{what}[None] (or a list, [clip])")
        if X.ndim != 2:
            raise ValueError(f"{what} has shape {X.shape}: waveforms are a 2-D array (n, samples) or a list of "
                             "1-D arrays (one channel: average a stereo recording's channels first)")
        clips = list(X)
    elif isinstance(X, (list, tuple, np.ndarray)):
        clips = list(X)
    else:
        raise TypeError(f"{owner} has an audio backbone: {what} must be waveforms (a list of 1-D arrays or a "
                        f"2-D array) or sound file paths, got {type(X).__name__}")
    if not clips:
        raise ValueError(f"Found 0 clips (an empty {what}) while a minimum of 1 is required.")
    if sample_rate is None:
        raise ValueError(f"{owner} needs sample_rate= (in Hz) to read waveform arrays; sound files carry their own")
    return AudioSource("waveforms", [_waveform(c, i, what) for i, c in enumerate(clips)], int(sample_rate))


def _waveform(clip, index, what) -> np.ndarray:
    wave = np.asarray(clip)
    if wave.ndim != 1:
        raise ValueError(f"{what}[{index}] has shape {wave.shape}; a clip is a 1-D array of samples")
    if wave.dtype.kind in "iub":
        raise ValueError(f"{what}[{index}] holds {wave.dtype} samples: integer PCM needs a scale; pass floats, "
                         "e.g. int16 / 32768")
    if wave.dtype.kind != "f":
        raise TypeError(f"{what}[{index}] holds {wave.dtype} values, not float samples")
    if len(wave) == 0:
        raise ValueError(f"{what}[{index}] is an empty clip")
    if not np.isfinite(wave).all():
        raise ValueError(f"{what}[{index}] holds NaN or infinite samples")
    return wave.astype(np.float32)


def _sound_files(items, what) -> AudioSource:
    if not items:
        raise ValueError(f"Found 0 sound files (an empty {what}) while a minimum of 1 is required.")
    paths = [Path(p).expanduser() for p in items]
    problems = []
    for i, path in enumerate(paths):
        if not path.exists():
            problems.append((i, FileNotFoundError(f"{what}[{i}]: sound file not found: {str(path)!r}")))
        elif path.is_dir():
            problems.append((i, ValueError(f"{what}[{i}]: {str(path)!r} is a directory, not a sound file")))
    if problems:
        raise unusable_images(problems, len(paths), "sound files")
    return AudioSource("sound files", [str(p) for p in paths], None)


def audio_signature() -> InputSignature:
    """The signature of every audio input (clips are read alike whatever their source)."""
    return InputSignature("audio")
