"""Fitting the Gaussians with the differentiable torch reference rasterizer on the CPU: the loss
falls and the photo is reproduced better than by the initial Gaussians."""
import numpy as np

from engine.avatar.splat_init import init_gaussians
from engine.motion.space import MotionFrame
from engine.render.splat.fit import FitOptions, Target, fit_gaussians, photo_psnr


def test_photo_fit_lowers_the_loss_and_raises_psnr(avatar):
    g = init_gaussians(avatar, 1500)
    fitted, losses = fit_gaussians(avatar, g, [Target(MotionFrame.neutral(), avatar.image)],
                                   FitOptions(size=40, steps=10, progress=False))
    assert len(losses) == 10 and losses[-1] < 0.8 * losses[0], losses
    assert photo_psnr(avatar, fitted, 80) > photo_psnr(avatar, g, 80) + 0.3
    # only the appearance and the offsets move; the binding stays
    np.testing.assert_array_equal(fitted.triangle, g.triangle)
    np.testing.assert_array_equal(fitted.bary, g.bary)
    assert (fitted.opacity >= 0).all() and (fitted.opacity <= 1).all()
    # the projections: scales never below the initial ones, offsets within MAX_OFFSET_CHANGE
    from engine.render.splat.fit import MAX_OFFSET_CHANGE
    assert (fitted.scale >= g.scale * (1 - 1e-5)).all()
    assert np.abs(fitted.offset - g.offset).max() <= MAX_OFFSET_CHANGE + 1e-6


def test_masked_pixels_do_not_count(avatar):
    """A target whose mask keeps nothing gives no gradient: nothing changes."""
    g = init_gaussians(avatar, 600)
    mask = np.zeros(avatar.image.shape[:2], bool)
    fitted, losses = fit_gaussians(avatar, g, [Target(MotionFrame.neutral(), avatar.image, mask)],
                                   FitOptions(size=32, steps=2, progress=False))
    assert max(losses) == 0.0
    np.testing.assert_allclose(fitted.color, g.color, atol=2e-4)   # (logit clipping at 1e-4)
