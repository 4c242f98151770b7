"""A still picture of the explorer, for when its widget cannot run (no kernel, no widget state).

JupyterLab does not save widget state by default, so a reopened notebook shows "model not found"
where a widget was. The explorer therefore also displays this picture (rows of waveforms and
spectrograms drawn straight into an RGB array, no matplotlib, a few tens of milliseconds) with a
note to re-run the cell; the live widget hides it when it renders.

>>> import numpy as np
>>> waves = np.zeros((2, 1, 2, 100), np.float32)
>>> png = snapshot_png(["source", "drums"], waves=waves, specs=[None, None], colormap=bytes(768))
>>> png[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import base64
import html
import io
from typing import Sequence

import numpy as np

__all__ = ["snapshot_png", "snapshot_html", "SNAPSHOT_CLASS"]

SNAPSHOT_CLASS = "stemlab-snapshot"
LABEL_WIDTH = 110
WAVE_COLOR = np.array([46, 134, 193], dtype=np.uint8)
SOURCE_COLOR = np.array([80, 80, 80], dtype=np.uint8)


def _wave_image(envelope: np.ndarray, height: int, width: int, color: np.ndarray) -> np.ndarray:
    """Rasterise one track's ``(channels, 2, columns)`` min/max envelope into ``height x width`` RGB."""
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    columns = envelope.shape[-1]
    x = np.minimum((np.arange(width) * columns) // width, columns - 1)
    band = height // envelope.shape[0]
    rows = np.arange(band)[:, None]
    for c, (lo, hi) in enumerate(envelope):
        top = np.round((1 - hi[x]) / 2 * (band - 1))
        bottom = np.round((1 - lo[x]) / 2 * (band - 1))
        mask = (rows >= top[None]) & (rows <= bottom[None])
        image[c * band:(c + 1) * band][mask] = color
    return image


def _spec_image(display: np.ndarray, height: int, width: int, lut: np.ndarray) -> np.ndarray:
    """Resample a ``uint8`` spectrogram display (row 0 at the top) and colour it through ``lut``."""
    ys = np.minimum((np.arange(height) * display.shape[0]) // height, display.shape[0] - 1)
    xs = np.minimum((np.arange(width) * display.shape[1]) // width, display.shape[1] - 1)
    return lut[display[np.ix_(ys, xs)]]


def _label(image: np.ndarray, text: str, dim: bool) -> None:
    """Write ``text`` into the left margin (Pillow's default bitmap font)."""
    from PIL import Image, ImageDraw

    margin = Image.fromarray(image[:, :LABEL_WIDTH])
    ImageDraw.Draw(margin).text((4, max(0, image.shape[0] // 2 - 6)), text[:18], fill=(150, 150, 150) if dim else (0, 0, 0))
    image[:, :LABEL_WIDTH] = np.asarray(margin)


def snapshot_png(names: Sequence[str], *, waves: np.ndarray | None, specs: Sequence[np.ndarray | None],
                 colormap: bytes, silent: Sequence[bool] | None = None, width: int = 840,
                 row_height: int = 28) -> bytes:
    """PNG of one row per track: waveform (if ``waves``) above spectrogram (where ``specs[i]``)."""
    from PIL import Image

    lut = np.frombuffer(colormap, dtype=np.uint8).reshape(256, 3)
    silent = silent or [False] * len(names)
    plot_width = width - LABEL_WIDTH
    rows = []
    for i, name in enumerate(names):
        parts = []
        if waves is not None:
            color = SOURCE_COLOR if i == 0 else WAVE_COLOR
            parts.append(_wave_image(waves[i], row_height, plot_width, color))
        if specs[i] is not None:
            parts.append(_spec_image(specs[i], row_height, plot_width, lut))
        body = np.concatenate(parts) if parts else np.full((row_height, plot_width, 3), 255, np.uint8)
        if silent[i]:
            body = (255 - (255 - body.astype(np.int16)) // 3).astype(np.uint8)  # dimmed, not hidden
        row = np.full((body.shape[0] + 2, width, 3), 255, dtype=np.uint8)
        row[1:-1, LABEL_WIDTH:] = body
        _label(row, name + (" (silent)" if silent[i] else ""), silent[i])
        rows.append(row)
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate(rows)).save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def snapshot_html(png: bytes, *, title: str) -> str:
    """The picture and a note, in an element the live widget knows to hide."""
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<div class="{SNAPSHOT_CLASS}"><p style="margin:2px 0;color:#a04000">{html.escape(title)}: a picture of '
            f"the explorer. Kernel not connected: re-run this cell to play and zoom.</p>"
            f'<img src="data:image/png;base64,{encoded}" style="max-width:100%"/></div>')
