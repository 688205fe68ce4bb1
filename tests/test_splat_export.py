"""``facecast avatar export --ply``: the common 3DGS PLY layout, read back and checked against
the renderer's own Gaussians (positions, colours, opacities, covariances)."""
import numpy as np

from engine.cli import main
from engine.config import ASSETS_DIR
from engine.motion.space import MotionFrame
from engine.render.splat import SplatRenderer
from engine.render.splat.deform import quaternion_matrices
from engine.render.splat.ply import PROPERTIES, SH_C0, gaussians_for_export, read_ply, write_ply


def test_ply_round_trip_reproduces_the_gaussians(avatar, tmp_path):
    r = SplatRenderer(avatar, 64, 64, backend="cpu", gaussians=1500, warmup=False)
    motion = MotionFrame.from_weights({"jawOpen": 0.7}, yaw=0.3)
    means, quats, scales, colors, opac = gaussians_for_export(r, motion)
    ply = read_ply(write_ply(tmp_path / "a.ply", means, quats, scales, colors, opac))
    assert list(ply) == list(PROPERTIES) and len(ply["x"]) == len(r.gaussians)
    np.testing.assert_allclose(np.stack([ply["x"], ply["y"], ply["z"]], 1), means, atol=1e-6)
    np.testing.assert_allclose(np.stack([ply[f"f_dc_{i}"] for i in range(3)], 1) * SH_C0 + 0.5, colors, atol=1e-5)
    np.testing.assert_allclose(1 / (1 + np.exp(-ply["opacity"])), opac, atol=1e-5)
    # rotation + scale rebuild the covariance the renderer uses (z flipped: the PLY frame)
    flip = np.diag([1.0, 1.0, -1.0]).astype(np.float32)
    _, cov = r.deformer.camera_space(motion, flip, np.zeros(3, np.float32))
    rot = quaternion_matrices(np.stack([ply[f"rot_{i}"] for i in range(4)], 1))
    s = np.exp(np.stack([ply[f"scale_{i}"] for i in range(3)], 1))
    rebuilt = rot @ (s[:, :, None] ** 2 * np.eye(3)) @ rot.transpose(0, 2, 1)
    scale = np.abs(cov).max(axis=(1, 2), keepdims=True) + 1e-12
    assert np.abs((rebuilt - cov) / scale).max() < 1e-3
    # the exported head: the nose is nearer the viewer (smaller z in this frame) than the cheeks
    assert np.median(ply["z"][np.abs(ply["x"]) < 0.1]) < np.median(ply["z"][np.abs(ply["x"]) > 0.8])


def test_export_command_writes_a_ply(tmp_path, capsys):
    out = tmp_path / "default.ply"
    assert main(["avatar", "export", str(ASSETS_DIR / "default.avatar"), "--ply", str(out), "--gaussians", "800"]) == 0
    assert out.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    assert len(read_ply(out)["x"]) > 700
    assert main(["avatar", "export", str(tmp_path / "missing.avatar"), "--ply", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
