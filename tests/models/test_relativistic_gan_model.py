import copy

import torch
from basicsr.utils.registry import MODEL_REGISTRY

from medsr_se.models.relativistic_gan_model import RelativisticGANModel
from tests.helpers import build_tiny_model


def test_registered_and_built_by_name(pairs_x4, tmp_path):
    assert MODEL_REGISTRY.get("RelativisticGANModel") is RelativisticGANModel
    model = build_tiny_model(pairs_x4, tmp_path)
    assert isinstance(model, RelativisticGANModel)
    g_opt = model.optimizer_g
    assert g_opt.defaults["lr"] == 1e-4 and g_opt.defaults["betas"] == (0.9, 0.999) and g_opt.defaults["eps"] == 1e-8


def test_one_step_updates_generator_and_discriminator_and_logs_terms(pairs_x4, tmp_path):
    torch.manual_seed(0)
    model = build_tiny_model(pairs_x4, tmp_path)
    g_before = copy.deepcopy(model.net_g.state_dict())
    d_before = copy.deepcopy(model.net_d.state_dict())
    model.feed_data({"lq": torch.rand(2, 3, 16, 16), "gt": torch.rand(2, 3, 64, 64)})
    model.optimize_parameters(1)
    assert any(not torch.equal(g_before[k], v) for k, v in model.net_g.state_dict().items())
    assert any(not torch.equal(d_before[k], v) for k, v in model.net_d.state_dict().items())
    log = model.get_current_log()
    for key in ("l_g_vgg", "l_g_l1", "l_g_gan", "l_g_mse", "l_g_total", "l_d_real", "l_d_fake",
                "out_d_real", "out_d_fake", "d_separation", "d_pairs_ranked"):
        assert key in log and isinstance(log[key], float)
    # EMA moved towards the trained generator
    ema = model.net_g_ema.state_dict()
    assert any(not torch.equal(g_before[k], ema[k]) for k in ema)


def alternating_step(model, lq, gt):
    """The textbook RaGAN step, two separate updates: G with D frozen, then D on sr.detach(); D sees cat[gt, sr]
    each time (its BN normalises over the batch it is given)."""
    from medsr_se.losses.fusion_loss import relativistic_d_loss

    for param in model.net_d.parameters():
        param.requires_grad = False
    model.optimizer_g.zero_grad()
    sr = model.net_g(lq)
    d_hr, d_sr = model.net_d(torch.cat([gt, sr])).split(gt.shape[0])
    l_g_total, _ = model.cri_fusion(sr, gt, d_sr, d_hr.detach())
    l_g_total.backward()
    model.optimizer_g.step()
    for param in model.net_d.parameters():
        param.requires_grad = True
    model.optimizer_d.zero_grad()
    d_hr, d_sr = model.net_d(torch.cat([gt, sr.detach()])).split(gt.shape[0])
    l_d_real, l_d_fake = relativistic_d_loss(d_sr, d_hr)
    (l_d_real + l_d_fake).backward()
    model.optimizer_d.step()


def test_shared_hr_logits_equal_the_alternating_step(pairs_x4, tmp_path):
    """Reusing the discriminator pass's D(gt) logits in G's term gives the alternating step's gradients."""
    torch.manual_seed(5)
    ours = build_tiny_model(pairs_x4, tmp_path)
    reference = build_tiny_model(pairs_x4, tmp_path / "reference")
    torch.nn.init.normal_(ours.net_g.conv_last.weight, std=0.01)  # a zero tail would leave G's body without gradient
    for name in ("net_g", "net_d", "cri_fusion"):  # same weights, the same (random) VGG; float64: exact comparison
        getattr(reference, name).load_state_dict(getattr(ours, name).state_dict())
        getattr(ours, name).double()
        getattr(reference, name).double()
    lq, gt = torch.rand(2, 3, 16, 16, dtype=torch.float64), torch.rand(2, 3, 64, 64, dtype=torch.float64)
    ours.feed_data({"lq": lq, "gt": gt})
    ours.optimize_parameters(1)
    alternating_step(reference, lq, gt)
    for name in ("net_g", "net_d"):  # the gradients each optimizer stepped with (left in .grad)
        got = dict(getattr(ours, name).named_parameters())
        assert sum(param.grad.count_nonzero() > 0 for param in got.values()) > len(got) // 2  # not a trivial check
        for key, param in getattr(reference, name).named_parameters():
            assert got[key].grad is not None, f"{name}.{key} got no gradient"
            torch.testing.assert_close(got[key].grad, param.grad, rtol=1e-9, atol=1e-12, msg=f"{name}.{key}")


def test_net_d_init_iters_skips_generator(pairs_x4, tmp_path):
    model = build_tiny_model(pairs_x4, tmp_path, net_d_init_iters=5)
    g_before = copy.deepcopy(model.net_g.state_dict())
    model.feed_data({"lq": torch.rand(2, 3, 16, 16), "gt": torch.rand(2, 3, 64, 64)})
    model.optimize_parameters(3)
    assert all(torch.equal(g_before[k], v) for k, v in model.net_g.state_dict().items())
    assert "l_g_total" not in model.get_current_log() and "l_d_real" in model.get_current_log()


def test_save_is_atomic_and_complete(pairs_x4, tmp_path):
    model = build_tiny_model(pairs_x4, tmp_path)
    root = tmp_path / "experiments" / "unit"
    (root / "models").mkdir(parents=True)
    (root / "training_states").mkdir()
    model.save(epoch=0, current_iter=7)
    assert sorted(p.name for p in (root / "models").iterdir()) == ["net_d_7.pth", "net_g_7.pth"]
    assert [p.name for p in (root / "training_states").iterdir()] == ["7.state"]
    assert not (root / ".saving").exists()
    state = torch.load(root / "training_states" / "7.state", weights_only=True)
    assert state["iter"] == 7 and len(state["optimizers"]) == 2
    assert set(torch.load(root / "models" / "net_g_7.pth", weights_only=True)) == {"params", "params_ema",
                                                                                   "medsr_se_network_g",
                                                                                   "medsr_se_data"}


def test_the_generator_gets_an_adversarial_gradient(pairs_x4, tmp_path):
    """The RaGAN term moves G: its gradient on G's last convolution is a sizeable part of the L1 term's (the 0.1.x D,
    whose logit did not depend on its input, gave ~1e-5 of it)."""
    from medsr_se.losses.fusion_loss import relativistic_g_loss

    torch.manual_seed(3)
    model = build_tiny_model(pairs_x4, tmp_path)
    torch.nn.init.normal_(model.net_g.conv_last.weight, std=0.01)
    lq, gt = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 64, 64)
    weight = model.net_g.conv_last.weight

    def gradient_norm(loss_of_sr) -> float:
        sr = model.net_g(lq)
        (grad,) = torch.autograd.grad(loss_of_sr(sr), weight)
        return float(grad.norm())

    def gan_term(sr):
        d_hr, d_sr = model.net_d(torch.cat([gt, sr])).split(gt.shape[0])
        return relativistic_g_loss(d_sr, d_hr.detach())

    ratio = gradient_norm(gan_term) / gradient_norm(lambda sr: torch.nn.functional.l1_loss(sr, gt))
    assert ratio > 1e-2, ratio
