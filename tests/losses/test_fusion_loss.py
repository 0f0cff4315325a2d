import pytest
import torch
from basicsr.losses import build_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch.nn import functional as F

from medsr_se.losses.fusion_loss import FusionLoss, relativistic_d_loss, relativistic_g_loss
from medsr_se.losses.vgg_features import VGGFeatures

RANDOM_VGG = {"vgg_weights_path": "random", "vgg_layers": {"conv2_2": 1.0}}


def bce(logits, target):
    p = torch.sigmoid(logits)
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


def test_identical_images_give_zero_pixel_terms():
    loss = FusionLoss(**RANDOM_VGG)
    hr = torch.rand(2, 3, 32, 32)
    total, terms = loss(hr.clone(), hr)
    assert terms["l_g_l1"].item() == 0 and terms["l_g_mse"].item() == 0
    assert terms["l_g_vgg"].item() == pytest.approx(0, abs=1e-7)
    assert "l_g_gan" not in terms and total.item() == pytest.approx(0, abs=1e-7)


def test_total_is_weighted_sum_of_terms_with_paper_defaults():
    torch.manual_seed(0)
    loss = FusionLoss(**RANDOM_VGG)
    assert (loss.vgg_weight, loss.l1_weight, loss.gan_weight, loss.mse_weight) == (1, 1, 0.005, 0.5)
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    d_sr, d_hr = torch.randn(2, 1), torch.randn(2, 1)
    total, terms = loss(sr, hr, d_sr, d_hr)
    torch.testing.assert_close(terms["l_g_l1"], (sr - hr).abs().mean())
    torch.testing.assert_close(terms["l_g_mse"], 0.5 * ((sr - hr) ** 2).mean())
    ragan = 0.5 * (bce(d_sr - d_hr.mean(), 1.0) + bce(d_hr - d_sr.mean(), 0.0))
    torch.testing.assert_close(terms["l_g_gan"], 0.005 * ragan)
    vgg = loss.vgg
    expected_vgg = F.l1_loss(vgg(sr)["conv2_2"], vgg(hr)["conv2_2"])
    torch.testing.assert_close(terms["l_g_vgg"], expected_vgg)
    torch.testing.assert_close(total, terms["l_g_vgg"] + terms["l_g_l1"] + terms["l_g_gan"] + terms["l_g_mse"])
    assert terms["l_g_total"] is total


def test_weights_are_configurable_and_zero_drops_a_term():
    loss = FusionLoss(vgg_weight=0, l1_weight=2, gan_weight=0.1, mse_weight=0)
    assert loss.vgg is None
    sr, hr = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    _, terms = loss(sr, hr, torch.zeros(1, 1), torch.zeros(1, 1))
    assert set(terms) == {"l_g_l1", "l_g_gan", "l_g_total"}
    torch.testing.assert_close(terms["l_g_l1"], 2 * (sr - hr).abs().mean())
    torch.testing.assert_close(terms["l_g_gan"], 0.1 * torch.log(torch.tensor(2.0)))


def test_discriminator_terms_mirror_generator_terms():
    d_sr, d_hr = torch.randn(4, 1, requires_grad=True), torch.randn(4, 1, requires_grad=True)
    real, fake = relativistic_d_loss(d_sr, d_hr)
    torch.testing.assert_close(real, 0.5 * bce(d_hr - d_sr.mean(), 1.0))
    torch.testing.assert_close(fake, 0.5 * bce(d_sr - d_hr.mean(), 0.0))
    # the means are constants for the discriminator step
    real.backward()
    assert d_sr.grad is None
    # a perfect discriminator has a low loss, the generator a high one
    strong_sr, strong_hr = torch.full((4, 1), -8.0), torch.full((4, 1), 8.0)
    assert sum(relativistic_d_loss(strong_sr, strong_hr)) < 1e-3
    assert relativistic_g_loss(strong_sr, strong_hr) > 5


def test_vgg_weights_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="(?s)vgg19-dcbb9e9d.pth.*vgg_weights_path"):
        FusionLoss()
    with pytest.raises(FileNotFoundError, match="no file at"):
        FusionLoss(vgg_weights_path=str(tmp_path / "nope.pth"))


def test_vgg_weights_load_from_local_file_and_hub_cache(tmp_path, monkeypatch):
    from torchvision.models import vgg

    torch.manual_seed(3)
    reference = vgg.make_layers(vgg.cfgs["E"])  # torchvision's VGG19 feature layout
    state = {f"features.{key}": value for key, value in reference.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored: only features are used
    weights = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    weights.parent.mkdir(parents=True)
    torch.save(state, weights)
    explicit = VGGFeatures(["relu1_1"], weights_path=str(weights))
    torch.testing.assert_close(explicit.features[0].weight, reference[0].weight)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    found = VGGFeatures(["conv5_4"])
    assert found.weights_file == str(weights) and len(found.features) == 35


def test_grayscale_input_feeds_vgg():
    loss = FusionLoss(**RANDOM_VGG)
    _, terms = loss(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))
    assert terms["l_g_vgg"].item() > 0


def test_unknown_layer_name():
    with pytest.raises(ValueError, match="unknown vgg19 layer"):
        FusionLoss(vgg_weights_path="random", vgg_layers={"conv9_9": 1.0})


def test_built_by_name_through_basicsr():
    assert LOSS_REGISTRY.get("FusionLoss") is FusionLoss
    loss = build_loss({"type": "FusionLoss", "gan_weight": 0.01, **RANDOM_VGG})
    assert isinstance(loss, FusionLoss) and loss.gan_weight == 0.01
