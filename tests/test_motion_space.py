import json

import numpy as np
import pytest

from engine.motion.space import (ARKIT_NAMES, BINARY_SIZE, INDEX, VECTOR_DIM, MotionDecodeError,
                                 MotionFrame)


def _random_frame(seed: int = 0) -> MotionFrame:
    rng = np.random.default_rng(seed)
    return MotionFrame(rng.random(52, dtype=np.float32), rng.normal(0, 0.3, 3), rng.normal(0, 0.1, 3))


def test_arkit_names_are_unique_and_in_apple_order():
    assert len(set(ARKIT_NAMES)) == 52
    assert ARKIT_NAMES[0] == "eyeBlinkLeft" and ARKIT_NAMES[17] == "jawOpen" and ARKIT_NAMES[-1] == "tongueOut"
    assert INDEX["browInnerUp"] == 43


def test_binary_roundtrip_is_exact_and_compact():
    f = _random_frame()
    data = f.to_bytes(pts=123456789)
    assert len(data) == BINARY_SIZE <= 256
    pts, g = MotionFrame.from_bytes(data)
    assert pts == 123456789
    np.testing.assert_array_equal(g.to_vector(), f.to_vector())


def test_json_roundtrip_names_every_shape():
    f = _random_frame(1)
    text = f.to_json(pts=7)
    assert set(json.loads(text)["blendshapes"]) == set(ARKIT_NAMES)
    pts, g = MotionFrame.from_json(text)
    assert pts == 7
    np.testing.assert_allclose(g.to_vector(), f.to_vector(), atol=1e-5)


@pytest.mark.parametrize("data", [b"", b"FM" + b"\0" * 10, b"XX\x01\x00" + b"\0" * (BINARY_SIZE - 4)])
def test_bad_binary_is_rejected(data):
    with pytest.raises(MotionDecodeError):
        MotionFrame.from_bytes(data)


def test_nan_is_rejected_on_decode():
    f = _random_frame()
    f.blendshapes[3] = np.nan
    with pytest.raises(MotionDecodeError):
        MotionFrame.from_bytes(f.to_bytes())
    with pytest.raises(MotionDecodeError):
        MotionFrame.from_json('{"blendshapes": {"jawOpen": "x"}}')
    with pytest.raises(MotionDecodeError):
        MotionFrame.from_json("not json")


def test_vector_layout_and_named_access():
    f = MotionFrame.from_weights({"jawOpen": 0.7}, yaw=0.1, pitch=-0.2, roll=0.05)
    v = f.to_vector()
    assert v.shape == (VECTOR_DIM,) and v.dtype == np.float32
    assert v[INDEX["jawOpen"]] == pytest.approx(0.7) and f["jawOpen"] == pytest.approx(0.7)
    np.testing.assert_allclose(v[52:55], [0.1, -0.2, 0.05], rtol=1e-6)
    with pytest.raises(KeyError):
        MotionFrame.from_weights({"jawOpn": 1.0})
