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


def test_default_toml_lists_every_key_with_the_dataclass_default():
    """configs/default.toml and the dataclasses agree: same keys, same values."""
    import dataclasses
    import tomllib
    from engine.config import CONFIG_DIR, Config
    data = tomllib.loads((CONFIG_DIR / "default.toml").read_text())
    defaults = Config()
    assert set(data) == {f.name for f in dataclasses.fields(Config)}
    for section, table in data.items():
        fields = dataclasses.asdict(getattr(defaults, section))
        assert set(table) == set(fields), section
        for key, value in table.items():
            assert value == fields[key], f"{section}.{key}: toml {value!r} != dataclass {fields[key]!r}"


def test_hardening_keys_are_typed_and_validated():
    cfg = load_config()
    assert cfg.webrtc.connect_timeout_s == 15.0 and cfg.pipeline.max_queued_segments == 64
    assert (cfg.server.max_viewers_per_session, cfg.server.max_sockets_per_session) == (4, 4)
    assert cfg.server.allowed_origins == [] and cfg.server.token == ""
    with pytest.raises(ConfigError, match="server.allowed_origins"):
        load_config(overrides={"server": {"allowed_origins": ["example.com"]}})
    with pytest.raises(ConfigError, match="server.token"):
        load_config(overrides={"server": {"token": "short"}})
    with pytest.raises(ConfigError, match="webrtc.connect_timeout_s"):
        load_config(overrides={"webrtc": {"connect_timeout_s": "soon"}})
    with pytest.raises(ConfigError, match="pipeline.max_queued_segments"):
        load_config(overrides={"pipeline": {"max_queued_segments": 0}})
    assert load_config(overrides={"server": {"allowed_origins": ["https://app.example.com", "*"]}})


def test_ice_servers_and_transport_policy_are_validated():
    ok = load_config(overrides={"webrtc": {
        "ice_servers": [{"urls": "stun:127.0.0.1:3478"},
                        {"urls": ["turn:127.0.0.1:3478?transport=tcp"], "username": "u", "credential": "p"}],
        "ice_transport_policy": "relay"}})
    assert ok.webrtc.ice_transport_policy == "relay"
    with pytest.raises(ConfigError, match="needs 'urls'"):
        load_config(overrides={"webrtc": {"ice_servers": [{"url": "stun:x"}]}})
    with pytest.raises(ConfigError, match="not a stun:, turn: or turns: URL"):
        load_config(overrides={"webrtc": {"ice_servers": [{"urls": "http://x"}]}})
    with pytest.raises(ConfigError, match="needs 'username' and 'credential'"):
        load_config(overrides={"webrtc": {"ice_servers": [{"urls": "turn:127.0.0.1:3478"}]}})
    with pytest.raises(ConfigError, match="needs a turn: server"):
        load_config(overrides={"webrtc": {"ice_servers": [{"urls": "stun:x:1"}], "ice_transport_policy": "relay"}})
    with pytest.raises(ConfigError, match="not one of"):
        load_config(overrides={"webrtc": {"ice_transport_policy": "tcp"}})
