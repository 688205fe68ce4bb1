import pytest

from engine.config import ConfigError, load_config, replace


def test_default_config_loads_and_matches_dataclass_defaults():
    cfg = load_config()
    assert cfg.video.fps == 25 and cfg.audio.model_sample_rate == 16000
    assert cfg.motion.backends[0] == "tensorrt"


def test_unknown_key_is_an_error(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[video]\nfsp = 30\n")
    with pytest.raises(ConfigError, match="fsp"):
        load_config(p)


def test_wrong_type_and_range_name_the_key(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[video]\nfps = "fast"\n')
    with pytest.raises(ConfigError, match="video.fps"):
        load_config(p)
    with pytest.raises(ConfigError, match="maximum"):
        load_config(overrides={"video": {"fps": 1000}})
    with pytest.raises(ConfigError, match="not one of"):
        load_config(overrides={"motion": {"source": "magic"}})


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[video\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_config(p)


def test_replace_validates_and_keeps_other_fields():
    cfg = replace(load_config(), video={"width": 256, "height": 256})
    assert (cfg.video.width, cfg.video.height, cfg.video.fps) == (256, 256, 25)
    with pytest.raises(ConfigError):
        replace(cfg, video={"width": 1})


def test_every_config_in_configs_dir_is_valid():
    from engine.config import CONFIG_DIR
    files = sorted(CONFIG_DIR.glob("*.toml"))
    assert files
    for f in files:
        load_config(f)
