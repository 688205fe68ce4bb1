"""`facecast avatar preview` and `facecast bench render` end to end (small sizes, no timing asserts)."""
import json

import cv2

from engine.cli import main
from engine.config import ASSETS_DIR


def test_preview_writes_contact_sheet(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["avatar", "preview", str(ASSETS_DIR / "default.avatar"), "-o", str(out), "--size", "256"]) == 0
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] > 256 and sheet.shape[1] > 256
    assert sheet.std() > 20   # pictures, not a blank page


def test_preview_bad_avatar(tmp_path, capsys):
    bad = tmp_path / "x.avatar"
    bad.write_text("nope")
    assert main(["avatar", "preview", str(bad), "-o", str(tmp_path / "s.png")]) != 0
    assert "not a valid .avatar" in capsys.readouterr().err


def test_bench_render_json(capsys):
    assert main(["bench", "render", "--json", "--sizes", "64,96", "--frames", "3", "--warmup", "1",
                 "--no-tracking"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)["results"]
    assert set(result) == {"64", "96"}
    for r in result.values():
        assert r["median_ms"] > 0 and r["p99_ms"] >= r["median_ms"] and r["fps"] > 0
