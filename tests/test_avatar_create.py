"""Avatar creation from photos (real mediapipe face mesh) and its error handling."""
import warnings

import cv2
import numpy as np
import pytest
import skimage.data

from engine.avatar.asset import AvatarError
from engine.avatar.create import create_avatar
from engine.avatar.landmarks import detect_landmarks
from engine.cli import main
from engine.motion.space import INDEX


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def created_avatar(astronaut):
    return create_avatar(astronaut, name="astro")


def test_astronaut_avatar(created_avatar):
    assert created_avatar.image.shape == (512, 512, 3)
    assert created_avatar.face_scale > 40
    assert not created_avatar.notes
    d = created_avatar.rig_deltas
    # jawOpen: chin moves down, upper lip stays; blink: upper lid moves down
    assert d[INDEX["jawOpen"], 152, 1] > 0.15
    assert abs(d[INDEX["jawOpen"], 13, 1]) < 0.02
    assert d[INDEX["eyeBlinkLeft"], 386, 1] > 0.05 and abs(d[INDEX["eyeBlinkLeft"], 159, 1]) < 1e-6
    # smile raises (-y) and widens the left corner (+x); browInnerUp raises the inner brow
    assert d[INDEX["mouthSmileLeft"], 291, 1] < -0.05 and d[INDEX["mouthSmileLeft"], 291, 0] > 0.03
    assert d[INDEX["browInnerUp"], 285, 1] < -0.05
    # gaze moves only the iris of that eye
    look = d[INDEX["eyeLookOutLeft"]]
    assert look[473, 0] > 0.05 and np.abs(look[468]).max() == 0


def test_no_face():
    rng = np.random.default_rng(0)
    noise = (rng.random((300, 300, 3)) * 40 + 100).astype(np.uint8)
    with pytest.raises(AvatarError, match="no face"):
        create_avatar(noise)


def test_tiny_image(astronaut):
    with pytest.raises(AvatarError, match="too small"):
        create_avatar(cv2.resize(astronaut, (64, 64)))


@pytest.mark.parametrize("bad", ["photo.jpg", np.zeros((10,), np.uint8), np.zeros((200, 200, 2), np.uint8),
                                 np.full((200, 200, 3), 7.5)])
def test_not_an_image(bad):
    with pytest.raises(AvatarError):
        create_avatar(bad)


def test_huge_image_is_downscaled(astronaut):
    huge = cv2.resize(astronaut, (3500, 3500), interpolation=cv2.INTER_CUBIC)
    a = create_avatar(huge)
    assert a.image.shape == (512, 512, 3)
    assert any("downscaled" in n for n in a.notes)


def test_several_faces_take_largest(astronaut):
    canvas = np.full((900, 1000, 3), 200, np.uint8)
    canvas[:512, :512] = astronaut
    canvas[500:900, 600:1000] = cv2.resize(astronaut, (400, 400))  # a second, smaller face
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = create_avatar(canvas)
    assert any("faces" in str(w.message) for w in caught)
    assert any("largest" in n for n in a.notes)
    found = detect_landmarks(canvas)
    assert found.num_faces == 2
    assert (found.landmarks[:, :2] < 512).all()   # the big face (top left), not the smaller one


def test_cli_errors(tmp_path, capsys):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    assert main(["avatar", "create", str(not_image), "-o", str(tmp_path / "x.avatar")]) != 0
    assert "not an image" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((256, 256, 3), 128, np.uint8))
    assert main(["avatar", "create", str(blank), "-o", str(tmp_path / "y.avatar")]) != 0
    assert "no face" in capsys.readouterr().err
    assert not (tmp_path / "y.avatar").exists()


def test_tilted_photo_rig_is_upright(astronaut):
    h, w = astronaut.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)   # counter-clockwise 20 degrees
    tilted = cv2.warpAffine(astronaut, rot, (w, h), borderMode=cv2.BORDER_REFLECT)
    a = create_avatar(tilted)
    assert abs(np.degrees(a.face_roll) + 20) < 6            # the eye line is tilted in the photo
    assert abs(a.rig_neutral[473, 1] - a.rig_neutral[468, 1]) < 1e-5   # but level in the rig
    assert a.rig_neutral[152, 1] > 1.2 and abs(a.rig_neutral[152, 0]) < 0.3   # chin straight below


def test_blendshapes_are_anatomical(avatar):
    n, d = avatar.rig_neutral, avatar.rig_deltas
    shape = lambda name, w=1.0: n + w * d[INDEX[name]]  # noqa: E731
    # jawOpen rotates the chin about a hinge behind it: down and back
    assert d[INDEX["jawOpen"], 152, 1] > 0.15 and d[INDEX["jawOpen"], 152, 2] < -0.02
    # pucker and funnel: corners move toward the mouth centre, the lips come forward
    for name in ("mouthPucker", "mouthFunnel"):
        assert d[INDEX[name], 291, 0] < -0.03 and d[INDEX[name], 61, 0] > 0.03
        assert d[INDEX[name], 0, 2] > 0.05
    # funnel parts the lips (inner lips apart), pucker closes them
    gap = lambda p: p[14, 1] - p[13, 1]  # noqa: E731
    assert gap(shape("mouthFunnel")) > gap(n) + 0.05
    assert gap(shape("mouthPucker")) < 0.02
    # a full blink brings the upper lid margin onto the lower one (both eyes' centres)
    for up, lo, name in ((159, 145, "eyeBlinkRight"), (386, 374, "eyeBlinkLeft")):
        b = shape(name)
        assert abs(b[up, 1] - b[lo, 1]) < 0.03 and b[up, 1] > n[up, 1] + 0.05
    # smiles widen and raise the corners; frowns lower them
    assert d[INDEX["mouthSmileRight"], 61, 0] < -0.03 and d[INDEX["mouthSmileRight"], 61, 1] < -0.05
    assert d[INDEX["mouthFrownLeft"], 291, 1] > 0.05
    # brows: inner up raises the inner ends more than the outer ends
    bi = d[INDEX["browInnerUp"]]
    assert bi[55, 1] < bi[46, 1] - 0.03 and bi[285, 1] < bi[276, 1] - 0.03


def test_small_face_in_a_big_photo_is_refused(astronaut):
    small = cv2.resize(astronaut, (240, 240), interpolation=cv2.INTER_AREA)   # ~20 px between the eyes
    canvas = np.full((700, 700, 3), 180, np.uint8)
    canvas[230:470, 230:470] = small
    with pytest.raises(AvatarError, match="too small"):
        create_avatar(canvas)
