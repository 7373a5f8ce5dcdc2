"""The static import guard (.ci/import_guard) against tiny fake ComfyUI hosts built here as tarballs.

No real ComfyUI is needed: a fake host is a handful of comfy/*.py files defining the names nodes/runtime.py
and nodes/patch.py use, packed like the tarballs in ../shared/hosts. The guard itself (comfy-import-guard,
pinned in requirements-test.txt) runs for real, offline, through the script, so these tests fail when the script
misreads its report, checks the wrong files, or swallows a breaking host.
"""
import importlib.machinery
import importlib.util
import io
import os
import re
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, ".ci", "import_guard")


def _load_script():
    loader = importlib.machinery.SourceFileLoader("import_guard_script", SCRIPT)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


guard = _load_script()

# The comfy.* names the shipped code uses (nodes/runtime.py, nodes/patch.py), each as a host defines it. When the pack starts
# using another ComfyUI name, the SAFE test fails with a WILL BREAK line naming it: add it here.
MODEL_MANAGEMENT = {
    "get_torch_device": "def get_torch_device():\n    return None\n",
    "should_use_fp16": "def should_use_fp16(device=None, model_params=0, prioritize_performance=True):\n"
                       "    return False\n",
    "unet_offload_device": "def unet_offload_device():\n    return None\n",
    "load_models_gpu": "def load_models_gpu(models, memory_required=0):\n    pass\n",
    "throw_exception_if_processing_interrupted": "def throw_exception_if_processing_interrupted():\n    pass\n",
}
OTHER_MODULES = {
    "comfy/model_patcher.py": "class ModelPatcher:\n"
                              "    def __init__(self, model, load_device, offload_device, size=0):\n"
                              "        self.model = model\n",
    "comfy/utils.py": "class ProgressBar:\n    def __init__(self, total):\n        self.total = total\n",
    "comfy/ldm/modules/attention.py": "def attention_basic(q, k, v, heads, mask=None, attn_precision=None,\n"
                                      "                    skip_reshape=False, transformer_options={}):\n"
                                      "    return q\n\n"
                                      "optimized_attention = attention_basic\n",
    "comfy/patcher_extension.py": "class CallbacksMP:\n    ON_PRE_RUN = 'on_pre_run'\n\n\n"
                                  "class WrappersMP:\n    OUTER_SAMPLE = 'outer_sample'\n",
}


def make_host(hosts, version, commit, replace=None, drop=()):
    """hosts/comfyui-<version>-<commit>.tar.gz: a ComfyUI root with the fake comfy/ modules.

    `drop` leaves names out of comfy.model_management; `replace` gives some of them another definition.
    """
    names = {**MODEL_MANAGEMENT, **(replace or {})}
    files = {"main.py": "", **OTHER_MODULES,
             "comfy/model_management.py": "".join(src for name, src in names.items() if name not in drop)}
    os.makedirs(hosts, exist_ok=True)
    path = os.path.join(hosts, f"comfyui-{version}-{commit}.tar.gz")
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def run_script(hosts, cache):
    proc = subprocess.run([sys.executable, SCRIPT, str(hosts), "--cache", str(cache)],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def test_shipped_files_follow_comfyignore():
    files = guard.shipped_python_files()
    assert {"__init__.py", "nodes/runtime.py", "nodes/apply.py", "pulid/__init__.py", "pulid_cli/main.py"} <= set(files)
    assert not [f for f in files if f.split("/")[0] in ("tests", "testkit", "bench", "tools", ".ci")]
    tracked = subprocess.run(["git", "ls-files", "pulid/*.py", "nodes/*.py"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked and set(tracked) <= set(files)


def test_selection_uses_gitignore_rules(tmp_path):
    """Negation, anchoring and nested directory patterns mean what they mean in .gitignore."""
    for rel in ("a.py", "top.py", "sub/top.py", "gen/x.py", "gen/keep.py", "deep/tests/t.py", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / ".comfyignore").write_text("# comment\n/top.py\ngen/*\n!gen/keep.py\ntests/\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    (tmp_path / "untracked.py").write_text("")
    assert guard.shipped_python_files(str(tmp_path)) == ["a.py", "gen/keep.py", "sub/top.py"]


def test_hosts_lacking_a_name_or_a_signature_will_break(tmp_path):
    hosts = tmp_path / "hosts"
    make_host(hosts, "9.9.0", "0123abcd")
    make_host(hosts, "9.10.0", "4567ef01", drop=("throw_exception_if_processing_interrupted",))
    make_host(hosts, "9.11.0", "89abcdef",
              replace={"get_torch_device": "def get_torch_device(index):\n    return None\n"})
    rc, lines, err = run_script(hosts, tmp_path / "cache")
    assert rc == 1, err
    assert lines[0].startswith("import guard ComfyUI 9.9.0 (0123abcd): SAFE ("), lines
    assert re.fullmatch(r"import guard ComfyUI 9\.10\.0 \(4567ef01\): WILL BREAK "
                        r"comfy\.model_management\.throw_exception_if_processing_interrupted in nodes/runtime\.py:\d+",
                        lines[1]), lines
    broken = lines[2:]
    assert broken and all(line.startswith("import guard ComfyUI 9.11.0 (89abcdef): WILL BREAK "
                                          "comfy.model_management.get_torch_device in nodes/runtime.py:")
                          for line in broken), lines
    assert "host accepts (index)" in broken[0]


def test_pack_is_safe_on_a_host_with_its_names_and_the_checkout_is_cached(tmp_path):
    hosts, cache = tmp_path / "hosts", tmp_path / "cache"
    make_host(hosts, "9.9.0", "0123abcd")
    rc, lines, err = run_script(hosts, cache)
    assert rc == 0, (lines, err)
    match = re.fullmatch(r"import guard ComfyUI 9\.9\.0 \(0123abcd\): SAFE \((\d+) files, (\d+) comfy\.\* references\)",
                         "\n".join(lines))
    assert match, lines
    assert int(match[1]) == len(guard.shipped_python_files()) and int(match[2]) > 0

    marker = cache / "9.9.0" / "ComfyUI" / ".git" / "kept"
    marker.write_text("")
    assert run_script(hosts, cache)[:2] == (0, lines)
    assert marker.exists(), "the second run rebuilt a checkout whose tarball had not changed"

    make_host(hosts, "9.9.0", "0123abcd", drop=("load_models_gpu",))  # same name, new contents
    rc, lines, err = run_script(hosts, cache)
    assert rc == 1 and not marker.exists()
    assert [line.split(" in ")[0] for line in lines] == [
        "import guard ComfyUI 9.9.0 (0123abcd): WILL BREAK comfy.model_management.load_models_gpu"]


def test_a_bad_tarball_is_an_error(tmp_path):
    hosts = tmp_path / "hosts"
    make_host(hosts, "9.9.0", "0123abcd")
    (hosts / "comfyui-9.12.0-00000000.tar.gz").write_bytes(b"not a tarball")
    rc, lines, err = run_script(hosts, tmp_path / "cache")
    assert rc == 1
    assert lines[0].startswith("import guard ComfyUI 9.9.0 (0123abcd): SAFE")
    assert lines[1].startswith("import guard ComfyUI 9.12.0 (00000000): ERROR cannot unpack")
    assert run_script(tmp_path / "empty", tmp_path / "cache")[0] == 2
