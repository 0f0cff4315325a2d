import re

from medsr_se.cli import demo


def test_demo_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(demo, "find_vgg_weights", lambda vgg_type: None)  # as on a fresh machine
    assert demo.main(["--workdir", str(tmp_path / "d"), "--iters", "3"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "perceptual term is switched off" in captured.err  # no VGG weights on a fresh machine: said, not hidden
    assert re.search(r"\| x4 \| bicubic \| 2 \| [\d.]+", out) and re.search(r"\| x4 \| SEEDSR-GAN \| 2 \|", out)
    # a short summary instead of BasicSR's ~350 lines, which go to a log file
    assert len(out.splitlines()) < 25 and "Network" not in out and "-1 day" not in out
    assert re.search(r"3 iterations; last losses: l_\w+ [-\d.e]+", out) and "validation retina_heldout/psnr" in out
    assert re.search(r"discriminator: d_pairs_ranked [\d.]+, d_separation [-\d.e]+", out)
    assert "Network" in (tmp_path / "d" / "train_output.log").read_text()
    assert (tmp_path / "d" / "results" / "curves.png").stat().st_size > 0
    assert len(list((tmp_path / "d" / "results" / "sheets").glob("x4_*.png"))) == 2
    assert (tmp_path / "d" / "experiments" / "demo_x4" / "models" / "net_g_latest.pth").exists()


def test_tiles_lie_inside_the_field_of_view(tmp_path):
    names = demo.write_tiles(tmp_path)
    assert set(demo.TEST_TILES) <= set(names) and "tile_0_0" not in names
