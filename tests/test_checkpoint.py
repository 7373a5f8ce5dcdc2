"""Checkpoint loading: every layout/container/dtype, the 70 sites in order, strict keys, refused files."""
import os

import pytest
import torch

from testkit import make_pulid
from pulid.checkpoint import load_pulid_model, model_from_state_dict, read_state_dict
from pulid.errors import ModelFileError, PulidFormatError
from pulid.sites import SITES

def check_model(model, state, version, layout, dtype):
    """Everything a loaded model must satisfy, compared with the state dict the generator wrote."""
    assert (model.version, model.layout, model.checkpoint_dtype) == (version, layout, dtype)
    assert model.num_tokens == {"v1": 10, "v1.1": 32}[version]

    prefix = "id_adapter." if layout == "official" else "image_proj."
    enc_state = model.encoder.state_dict()
    assert len(enc_state) == len(make_pulid.encoder_shapes(version))
    for key, value in enc_state.items():
        assert value.dtype == torch.float32 and value.device.type == "cpu"
        assert torch.equal(value, state[prefix + key].float()), key
    assert not model.encoder.training
    assert not any(p.requires_grad for p in model.encoder.parameters())

    kv_fmt = "id_adapter_attn_layers.{}.id_to_{}.weight" if layout == "official" else "ip_adapter.{}.to_{}_ip.weight"
    assert len(model.kv_weights) == 70
    for site, (wk, wv) in zip(SITES, model.kv_weights):
        assert wk.dtype == dtype and wk.shape == (site.width, 2048)
        assert torch.equal(wk, state[kv_fmt.format(site.n, "k")])
        assert torch.equal(wv, state[kv_fmt.format(site.n, "v")])
    # make_pulid gives every site distinct weights, so equality above pins each one to its site.
    assert not torch.equal(model.kv_weights[0][0], model.kv_weights[1][0])


# Real-size files as users download them (pulid_v1.bin, pulid_v1.1.safetensors) ...
@pytest.mark.parametrize(
    "version,layout,fmt,dtype",
    [("v1", "official", "bin", torch.float16), ("v1.1", "official", "safetensors", torch.float16)],
    ids=["pulid_v1.bin", "pulid_v1.1.safetensors"],
)
def test_load_real_size_files(tmp_path, version, layout, fmt, dtype):
    path = tmp_path / f"pulid.{fmt}"
    state = make_pulid.write_pulid_checkpoint(path, version, layout, dtype, seed=3, fmt=fmt)
    model = load_pulid_model(path)
    assert model.path == str(path)
    check_model(model, state, version, layout, dtype)
    del state, model
    os.remove(path)


# ... the remaining layout x version x dtype combinations through the same loader after reading ...
@pytest.mark.parametrize(
    "version,layout,dtype",
    [("v1", "ip-adapter", torch.float32), ("v1.1", "ip-adapter", torch.bfloat16)],
    ids=lambda p: str(p).replace("torch.", ""),
)
def test_load_layouts_and_dtypes(version, layout, dtype):
    state = make_pulid.pulid_state_dict(version, layout, dtype, seed=3)
    check_model(model_from_state_dict(dict(state), "x.safetensors"), state, version, layout, dtype)


# ... and every container x dtype (reading is shape-agnostic, so small tensors suffice).
@pytest.mark.parametrize("fmt,nest", [("bin", False), ("bin", True), ("safetensors", False)], ids=["bin", "nested-bin", "safetensors"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_read_every_container_and_dtype(tmp_path, fmt, nest, dtype):
    state = {"image_proj.body.0.weight": torch.randn(3, 4).to(dtype), "ip_adapter.1.to_k_ip.weight": torch.randn(5).to(dtype)}
    path = tmp_path / f"small.{fmt}"
    make_pulid._write(path, state, fmt, nest=nest)
    got = read_state_dict(str(path))
    assert got.keys() == state.keys()
    assert all(got[k].dtype == dtype and torch.equal(got[k], state[k]) for k in state)


def test_dtype_and_device_arguments(v1_state):
    model = model_from_state_dict(dict(v1_state), "pulid_v1.bin", device="cpu", dtype=torch.bfloat16)
    assert {p.dtype for p in model.encoder.parameters()} == {torch.bfloat16}
    assert model.kv_weights[0][0].dtype == torch.float16  # K/V stay in the file's dtype


def test_site_table_order():
    """diffusers registers down_blocks, then up_blocks, then mid_block: the checkpoint numbers them so."""
    blocks = [s.block for s in SITES]
    assert blocks[:4] == ["down_blocks.1.attentions.0"] * 2 + ["down_blocks.1.attentions.1"] * 2
    assert blocks[24] == "up_blocks.0.attentions.0" and blocks[60:] == ["mid_block.attentions.0"] * 10
    assert [s.n for s in SITES] == list(range(1, 140, 2))
    assert [s.width for s in SITES] == make_pulid.KV_WIDTHS
    assert all(s.heads == s.width // 64 for s in SITES)
    assert SITES[-1].diffusers_name == "mid_block.attentions.0.transformer_blocks.9.attn2"


@pytest.fixture(scope="module")
def v1_state():
    return make_pulid.pulid_state_dict("v1", "official", torch.float16, seed=3)


def edited(state, drop=(), **extra):
    out = {k: v for k, v in state.items() if k not in drop}
    out.update({k.replace("__", "."): v for k, v in extra.items()})
    return out


@pytest.mark.parametrize(
    "edit,message",
    [
        (dict(drop=["id_adapter.mapping_3.4.bias"]), "missing 1 key.*id_adapter.mapping_3.4.bias"),
        (dict(id_adapter__extra__weight=torch.zeros(1)), "unexpected 1 key.*id_adapter.extra.weight"),
        (dict(id_adapter__body__0__weight=torch.zeros(1024, 1281)), r"id_adapter.body.0.weight of shape \[1024, 1281\]"),
        (dict(drop=["id_adapter_attn_layers.77.id_to_v.weight"]), "id_adapter_attn_layers.77.id_to_v.weight"),
        (dict(id_adapter_attn_layers__141__id_to_k__weight=torch.zeros(640, 2048)), "id_adapter_attn_layers.141"),
        (dict(id_adapter_attn_layers__1__id_to_k__weight=torch.zeros(1280, 2048)), r"id_adapter_attn_layers.1.id_to_k.weight of shape \[1280, 2048\]"),
        (dict(id_adapter_attn_layers__139__id_to_k__weight=torch.zeros(640, 2048)), r"139.id_to_k.weight of shape \[640, 2048\], expected \[1280, 2048\]"),
        (dict(unet__conv__weight=torch.zeros(1)), "unet.conv.weight"),
    ],
)
def test_strict_keys_and_shapes(v1_state, edit, message):
    with pytest.raises(PulidFormatError, match=message) as err:
        model_from_state_dict(edited(v1_state, **edit), "pulid_v1.bin")
    assert "pulid_v1.bin" in str(err.value)


@pytest.mark.parametrize(
    "writer,message",
    [
        (make_pulid.write_flux_checkpoint, "PuLID-FLUX"),
        (make_pulid.write_plain_ip_adapter, "plain IP-Adapter"),
        (lambda p: make_pulid.write_plain_ip_adapter(p, fmt="bin"), "plain IP-Adapter"),
        (make_pulid.write_truncated, "truncated"),
        (lambda p: make_pulid.write_truncated(p, fmt="bin"), "truncated"),
        (make_pulid.write_empty, "empty"),
        (lambda p: open(p, "w").write("<html>404 not found</html>"), "neither"),
        (lambda p: os.mkdir(p), "folder"),
    ],
)
def test_unsupported_files(tmp_path, writer, message):
    path = tmp_path / "model.safetensors"
    writer(path)
    with pytest.raises(PulidFormatError, match=message) as err:
        load_pulid_model(path)
    assert str(path) in str(err.value) and "pulid_v1.1.safetensors" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_pulid_model(tmp_path / "pulid_v1.bin")


@pytest.mark.parametrize("fmt", ["bin", "legacy", "pickle"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, fmt):
    marker = tmp_path / "pwned"
    path = tmp_path / "pulid_v1.bin"
    make_pulid.write_malicious_pickle(path, marker, fmt=fmt)
    with pytest.raises(PulidFormatError, match="refused") as err:
        load_pulid_model(path)
    assert str(path) in str(err.value)
    assert not marker.exists()


def _legacy_bin(path):
    torch.save({"a": torch.randn(100, 100)}, path, _use_new_zipfile_serialization=False)
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["cut at 200 bytes", "cut at 2000 bytes", "random bytes after a pickle header",
                                    "a length field larger than the file"])
def test_damaged_legacy_bin_is_called_damaged_not_code(tmp_path, damage):
    """Only a global the weights-only loader refuses means code; a cut or garbled pickle is a broken download."""
    data = _legacy_bin(tmp_path / "whole.bin")
    broken = {"cut at 200 bytes": data[:200], "cut at 2000 bytes": data[:2000],
              "random bytes after a pickle header": b"\x80\x02" + bytes(range(256)) * 12,
              # BINBYTES8 claiming 2**62 bytes: read as a short read, not a 4-exabyte allocation
              "a length field larger than the file": b"\x80\x04\x8e" + (2 ** 62).to_bytes(8, "little") + b"abc",
              }[damage]
    path = tmp_path / "pulid_v1.bin"
    path.write_bytes(broken)
    with pytest.raises(PulidFormatError) as err:
        load_pulid_model(str(path))
    message = str(err.value)
    assert "truncated or corrupt" in message and "download it again" in message and str(path) in message
    assert "refused" not in message and "run code" not in message


class _Shell:
    """Unpickling this runs a shell command: the classic malicious checkpoint."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_os_system_pickle_is_refused_and_never_runs(tmp_path, zipped):
    marker = tmp_path / "pwned"
    path = tmp_path / "pulid_v1.bin"
    torch.save({"id_adapter.body.0.weight": torch.zeros(2), "x": _Shell(f"touch '{marker}'")}, path,
               _use_new_zipfile_serialization=zipped)
    with pytest.raises(PulidFormatError, match="was refused: loading it would run code") as err:
        load_pulid_model(path)
    assert str(path) in str(err.value) and not marker.exists()


@pytest.mark.parametrize("zipped", [False, True], ids=["legacy", "zip"])
def test_every_cut_is_truncated_or_corrupt_never_refused(tmp_path, zipped):
    """A download cut at any byte: the stream may stop inside a global's name, which must not read as code."""
    whole = tmp_path / "whole.bin"
    torch.save({"id_adapter.body.0.weight": torch.randn(4, 4), "nested": {"b": torch.ones(3, dtype=torch.float16)}},
               whole, _use_new_zipfile_serialization=zipped)
    data = whole.read_bytes()
    path = tmp_path / "pulid_v1.bin"
    wrong = {}
    for cut in range(1, len(data)):
        path.write_bytes(data[:cut])
        try:
            read_state_dict(str(path))
            wrong[cut] = "loaded"
        except PulidFormatError as exc:
            message = str(exc)
            if not message.startswith(f"PuLID model file {path} is truncated or corrupt") or "refused" in message \
                    or "download it again" not in message:
                wrong[cut] = message
    assert not wrong, dict(list(wrong.items())[:3])
