"""A/B of two commits of the pack in one process, interleaved: the paths an artist waits on, as ratios.

    COMFYUI_PATH=/path/to/ComfyUI .venv/bin/python -m bench.ab OLD NEW [--reps 9]

Each commit is exported (`git archive`) into bench/_generated/ab/<commit>/ and imported as a package of its
own, the way ComfyUI imports a custom node folder, so both run side by side on the same ComfyUI, model files
and inputs. Only surfaces that stay put across a redesign are used: node classes by id and FUNCTION, the
documented library API (`pulid.load_pulid_model`, `encode_identity`, `IDEmbedding`) and the attn2 replace
ComfyUI calls. Each round runs A and B once, in alternating order.

Printed per operation: B/A as the median of the per-round ratios, and A's own spread (its slowest and fastest
round over its median). B is slower only where its median ratio lies above that spread.
"""
import importlib.util
import os
import subprocess
import io
import sys
import tarfile

import torch

from bench.common import GENERATED, ROOT, base_parser, build_sdxl, interleaved, log, machine, median, report, start_comfy
from bench.tradeoff import PROMPT, model_files, scene

SITE = ("input", 4, 0)  # the first cross-attention site: width 640, 10 heads, the most tokens


def export(commit):
    """The pack at `commit`, unpacked once under bench/_generated/ab/<full hash>/pack."""
    full = subprocess.run(["git", "-C", ROOT, "rev-parse", commit], capture_output=True, text=True,
                          check=True).stdout.strip()
    dest = os.path.join(GENERATED, "ab", full, "pack")
    if not os.path.isfile(os.path.join(dest, "__init__.py")):
        archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", full], capture_output=True,
                                 check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
    return full, dest


def import_copy(root, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, "__init__.py"),
                                                  submodule_search_locations=[root])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Variant:
    """One commit's nodes and library, set up on the shared model files and inputs."""

    def __init__(self, package, pulid_file, embeds_path, model, face_files):
        self.package = package
        self.library = importlib.import_module(package.__name__ + ".pulid")
        mappings = package.NODE_CLASS_MAPPINGS
        self.loader, self.apply = mappings["PuLIDSDXLModelLoader"](), mappings["PuLIDSDXLApply"]()
        self.pulid_file, self.embeds_path, self.model = pulid_file, embeds_path, model
        (self.handle,) = self.run(self.loader, pulid_file=pulid_file)
        self.embeds = self.library.IDEmbedding.load(embeds_path)
        (patched,) = self.run(self.apply, model=model, pulid_model=self.handle, embeds=self.embeds, weight=0.8,
                              method="fidelity", start_at=0.0, end_at=1.0)
        self.replace = patched.model_options["transformer_options"]["patches_replace"]["attn2"][SITE]
        lib = self.library
        self.encoder = lib.FaceEncoder(face_files["eva"], face_files["antelopev2"], face_files["facexlib"],
                                       providers="CPU")
        self.clip = lib.Clip(vision=self.encoder.eva, text=lib.load_clip_text(face_files["eva"]))

    @staticmethod
    def run(node, **inputs):
        return getattr(node, node.FUNCTION)(**inputs)

    def operations(self, site_inputs, photo, pictures):
        settings = iter([(0.8, "fidelity"), (1.2, "style"), (0.5, "neutral")] * 10_000)

        def reapply():
            weight, method = next(settings)
            self.run(self.apply, model=self.model, pulid_model=self.handle, embeds=self.embeds, weight=weight,
                     method=method, start_at=0.0, end_at=1.0)

        return {
            "Load PuLID Model (node, v1.1 fp16 file)": lambda: self.run(self.loader, pulid_file=self.pulid_file),
            "Load PuLID Embeddings (library)": lambda: self.library.IDEmbedding.load(self.embeds_path),
            "Apply PuLID: changed widget -> patched model": reapply,
            "identity term at one site (1024 px, 4096 tokens)": lambda: self.replace(*site_inputs),
            "Encode Face (library: one 1024 px photo)": lambda: self.encoder.encode(photo),
            "CLIP measures (prompt adherence + preservation, 4 x 1024 px)": lambda: (
                self.library.prompt_adherence(self.clip, pictures, PROMPT),
                self.library.preservation(self.clip, pictures, pictures[:1])),
        }


def site_inputs(model):
    """q/k/v and ComfyUI's extra options at SITE for a 1024 px image, cond and uncond, mid-schedule."""
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4096, 640, generator=generator)
    k, v = (torch.randn(2, 77, 640, generator=generator) for _ in range(2))
    sigma = float(model.get_model_object("model_sampling").percent_to_sigma(0.5))
    extra = {"sigmas": torch.tensor([sigma, sigma]), "cond_or_uncond": [1, 0], "n_heads": 10,
             "original_shape": [2, 4, 128, 128], "attn_precision": None}
    return q, k, v, extra


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("old", help="commit A (the baseline)")
    parser.add_argument("new", help="commit B")
    parser.set_defaults(reps=9)
    args = parser.parse_args()
    start_comfy(args.comfyui, "cpu")
    import folder_paths
    from bench.common import pulid_fixture

    model_file_dir = os.path.join(GENERATED, "ab", "models")
    os.makedirs(model_file_dir, exist_ok=True)
    pulid, embeds = pulid_fixture("v1.1")  # writes bench/_generated/pulid_v1.1.safetensors once
    embeds_path = os.path.join(model_file_dir, "face.safetensors")
    embeds.save(embeds_path)
    model = build_sdxl("meta", None)
    face_files = model_files()
    photo, pictures = scene(0), [scene(seed) for seed in range(1, 5)]

    variants = {}
    for label, commit in (("A", args.old), ("B", args.new)):
        full, root = export(commit)
        package = import_copy(root, f"pulid_sdxl_{label.lower()}")
        folder_paths.add_model_folder_path("pulid", GENERATED)  # after the import: the pack registers the folder
        variants[label] = Variant(package, "pulid_v1.1.safetensors", embeds_path, model, face_files)
        log.info("%s = %s (%s)", label, commit, full[:10])
    inputs = site_inputs(model)
    ops = {label: v.operations(inputs, photo, pictures) for label, v in variants.items()}

    log.info("%s; %d interleaved rounds per operation", machine(), args.reps)
    rows = []
    for name in ops["A"]:
        times = interleaved({label: ops[label][name] for label in ops}, args.reps)
        a, b = times["A"], times["B"]
        ratios = sorted(tb / ta for ta, tb in zip(a, b))
        spread = (min(a) / median(a), max(a) / median(a))
        rows.append((name, f"{median(a) * 1e3:.2f} ms", f"{median(b) * 1e3:.2f} ms", f"{median(ratios):.3f}",
                     f"{spread[0]:.3f}-{spread[1]:.3f}"))
    report("B against A", rows, header=("operation", "A median", "B median", "B/A", "A's spread"))


if __name__ == "__main__":
    main()
