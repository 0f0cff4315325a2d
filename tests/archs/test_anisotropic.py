"""SEEDSRGenerator with ``upscale: [r, 1]`` (through-plane SR, issue 25): shapes, the 1-D cubic skip against an
independent numpy reference, exact tiling, and checkpoints that record the scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY, load_generator
from medsr_se.inference.tiling import tiled_forward
from tests.helpers import trained_looking

KEYS_A = -0.75  # torch's bicubic (cubic convolution, Keys 1981, a = -0.75)


def keys_kernel(t: np.ndarray) -> np.ndarray:
    """Cubic convolution weight at distance t (Keys 1981)."""
    t = np.abs(t)
    return np.where(t <= 1, (KEYS_A + 2) * t**3 - (KEYS_A + 3) * t**2 + 1,
                    np.where(t < 2, KEYS_A * t**3 - 5 * KEYS_A * t**2 + 8 * KEYS_A * t - 4 * KEYS_A, 0.0))


def cubic_rows_reference(image: np.ndarray, r: int) -> np.ndarray:
    """(h, w) -> (r·h, w): output row j samples input row (j + 0.5) / r - 0.5 with the 4 nearest rows, border rows
    repeated (half-pixel centres, as torch / OpenCV bicubic)."""
    height = image.shape[0]
    out = np.zeros((r * height, image.shape[1]))
    for j in range(r * height):
        source = (j + 0.5) / r - 0.5
        base = int(np.floor(source))
        for offset in range(-1, 3):
            row = min(max(base + offset, 0), height - 1)
            out[j] += keys_kernel(source - (base + offset)) * image[row]
    return out


@pytest.mark.parametrize("r", [2, 3, 4, 5, 6, 7, 8])
def test_output_shape_grows_the_height_only(r):
    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=[r, 1]).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 1, 7, 11))
    assert out.shape == (2, 1, 7 * r, 11)
    # every stage is a 1-D shuffle whose factors multiply to r
    assert int(np.prod([stage.factor[0] for stage in net.upsample])) == r
    assert all(stage.factor[1] == 1 for stage in net.upsample)


@pytest.mark.parametrize("r", [3, 4, 6])
def test_untrained_skip_model_is_1d_cubic_interpolation(r):
    rng = np.random.default_rng(r)
    image = rng.random((9, 13)).astype(np.float32)
    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=[r, 1], img_residual=True).eval()
    with torch.no_grad():
        out = net(torch.from_numpy(image)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(out, cubic_rows_reference(image.astype(np.float64), r), atol=1e-5)
    assert not np.allclose(out[::r], image)  # not a plain repeat of rows: the comparison above can fail


@pytest.mark.parametrize("upscale", [[1, 1], [9, 1], [1, 3], [3, 3], [2, 1, 1], 3])
def test_unsupported_scales_are_refused(upscale):
    with pytest.raises(ValueError, match="upscale"):
        SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=upscale)


@pytest.mark.parametrize("r,tile", [(3, 8), (5, 7), (6, 8)])
def test_tiled_equals_whole(r, tile):
    net = trained_looking(SEEDSRGenerator(1, 1, num_feat=8, num_block=2, upscale=[r, 1], img_residual=True), r)
    x = torch.rand(2, 1, 23, 19, generator=torch.Generator().manual_seed(r))
    with torch.no_grad():
        whole = net(x)
        naive = torch.cat([net(x[..., :10]), net(x[..., 10:])], dim=-1)  # per-tile SE pooling: not exact
    tiled = tiled_forward(net, x, tile=tile, tile_pad=4)
    assert tiled.shape == (2, 1, 23 * r, 19)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    assert (naive - whole).abs().max() > 1e-3


@pytest.mark.parametrize("record", [True, False])
@pytest.mark.parametrize("r", [3, 4])
def test_checkpoint_records_and_restores_the_anisotropic_scale(tmp_path, r, record):
    """With the recorded network_g options, and from the weights alone (older / foreign checkpoints)."""
    options = {"type": "SEEDSRGenerator", "num_in_ch": 1, "num_out_ch": 1, "num_feat": 8, "num_block": 2,
               "upscale": [r, 1], "img_residual": True}
    net = trained_looking(SEEDSRGenerator(**{k: v for k, v in options.items() if k != "type"}), r)
    saved = {"params": net.state_dict()}
    if record:
        saved[NETWORK_OPTIONS_KEY] = options
    torch.save(saved, tmp_path / "net_g.pth")
    loaded = load_generator(str(tmp_path / "net_g.pth"))
    assert loaded.upscale == [r, 1] and loaded.scale_hw == (r, 1)
    x = torch.rand(1, 1, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


def test_isotropic_checkpoint_still_reads_as_an_int_scale(tmp_path):
    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=4)
    torch.save({"params": net.state_dict()}, tmp_path / "net_g.pth")
    loaded = load_generator(str(tmp_path / "net_g.pth"))
    assert loaded.upscale == 4 and loaded.scale_hw == (4, 4)
