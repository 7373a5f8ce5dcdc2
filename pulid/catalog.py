"""Every model file the pack uses: where it comes from, where it goes, how big it is, its sha256.

Sizes and hashes are copied from the hosting pages (Hugging Face shows the Git LFS sha256 and the
exact byte count on each file's page and commit); `sha256_source` says where each one was read,
so a maintainer can re-check it. A hash that no page publishes stays None: the fetcher then
checks the size only, and the download's Content-Length when the size is unknown too.

Folders are relative to ComfyUI's `models` directory; `find_installed` is where every reader (the library, the
nodes, the doctor) looks for an installed file, across all the folders an entry may sit in. The library owns this data because its own error
messages name these files and where to get them; the fetcher, the doctor and the nodes read the same
entries, so a file name or URL is written once, here.
"""
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ArchiveMember:
    """One file unpacked from an archive (flat into the entry's folder, whatever folder it sat in)."""

    filename: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ModelFile:
    """One downloadable file, or one zip whose members are unpacked into `folder`."""

    name: str  # what --only takes
    filename: str  # the name it is downloaded as (and kept under, unless it is an archive)
    folder: str  # relative to the models directory, "/"-separated
    urls: tuple[str, ...]  # tried in order
    size: int | None
    sha256: str | None
    sha256_source: str
    description: str
    default: bool = True  # fetched when --only is not given
    required: bool = True  # the doctor fails when it is missing
    members: tuple[ArchiveMember, ...] = field(default=())  # non-empty: a zip unpacked flat
    also_in: tuple[str, ...] = ()  # other folders users keep it in: read there too, never written there
    zip_folder: str = ""  # the folder the archive holds its members in (found there when unzipped as is)

    @property
    def is_archive(self) -> bool:
        return bool(self.members)

    @property
    def folders(self) -> tuple[str, ...]:
        """Every folder it may sit in, the one fetch-models puts it in first."""
        return (self.folder, *self.also_in)

    def installed_names(self) -> tuple[str, ...]:
        """The file names that exist in `folder` once this entry is installed."""
        return tuple(m.filename for m in self.members) if self.members else (self.filename,)


_HF = "https://huggingface.co"

PULID_V1_1 = ModelFile(
    name="pulid_v1.1",
    filename="pulid_v1.1.safetensors",
    folder="pulid",
    urls=(f"{_HF}/guozinan/PuLID/resolve/main/pulid_v1.1.safetensors",),
    size=984405232,
    sha256="4cb8ceec1078e0165399b88332ab3c5971619111b8e1730e6bae64144aabae41",
    sha256_source="huggingface.co/guozinan/PuLID commit d58b3ba (Git LFS pointer)",
    description="PuLID v1.1 weights (default)",
)

PULID_V1 = ModelFile(
    name="pulid_v1",
    filename="pulid_v1.bin",
    folder="pulid",
    urls=(f"{_HF}/guozinan/PuLID/resolve/main/pulid_v1.bin",),
    size=1582858505,
    sha256="245d05d8f11cd030d52562282332f912a2d5001b111873a40214163f33ab3f5d",
    sha256_source="huggingface.co/guozinan/PuLID commit 97bfdb4 (Git LFS pointer)",
    description="PuLID v1 weights (optional, the first release)",
    default=False,
    required=False,
)

EVA_CLIP = ModelFile(
    name="eva_clip",
    filename="EVA02_CLIP_L_336_psz14_s6B.pt",
    folder="clip_vision",
    urls=(f"{_HF}/QuanSun/EVA-CLIP/resolve/main/EVA02_CLIP_L_336_psz14_s6B.pt",),
    size=856461210,
    sha256="84c3a17a228c567a155259b2245b0b59072bf7da510260a0a02ec54de6d50b05",
    sha256_source="huggingface.co/QuanSun/EVA-CLIP commit 690a597 (Git LFS pointer)",
    description="EVA02-CLIP-L-14-336 (the PuLID face feature encoder)",
    also_in=("pulid",),  # the face encoder loader lists both folders (README, Models)
)

# The two antelopev2 members PuLID runs; insightface would load the other three too, but needs only these.
ANTELOPEV2_DETECTOR = ArchiveMember("scrfd_10g_bnkps.onnx", 16923827,
                                    "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91")
ANTELOPEV2_RECOGNIZER = ArchiveMember("glintr100.onnx", 260665334,
                                      "4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf")

# The insightface release zip holds an `antelopev2/` folder; the fetcher unpacks it flat so the
# files land in models/insightface/models/antelopev2/ and not one folder deeper (where a zip unpacked
# as is puts them: `member_dirs` finds them there too). Member hashes are
# the Git LFS sha256 shown for the same files on huggingface.co/DIAMONIK7777/antelopev2 (the
# copy the official PuLID code downloads); the second URL is a Hugging Face copy of the same zip.
ANTELOPEV2 = ModelFile(
    name="antelopev2",
    filename="antelopev2.zip",
    folder="insightface/models/antelopev2",
    urls=(
        "https://github.com/deepinsight/insightface/releases/download/v0.7/antelopev2.zip",
        f"{_HF}/MonsterMMORPG/tools/resolve/main/antelopev2.zip",
    ),
    size=360662982,
    sha256="8e182f14fc6e80b3bfa375b33eb6cff7ee05d8ef7633e738d1c89021dcf0c5c5",
    sha256_source="Git LFS sha256 of antelopev2.zip on huggingface.co/MonsterMMORPG/tools",
    description="insightface antelopev2 (face detection + ArcFace identity)",
    zip_folder="antelopev2",
    members=(
        ArchiveMember("1k3d68.onnx", 143607619,
                      "df5c06b8a0c12e422b2ed8947b8869faa4105387f199c477af038aa01f9a45cc"),
        ArchiveMember("2d106det.onnx", 5030888,
                      "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf"),
        ArchiveMember("genderage.onnx", 1322532,
                      "4fde69b1c810857b88c64a335084f1c3fe8f01246c9a191b48c7bb756d6652fb"),
        ANTELOPEV2_RECOGNIZER,
        ANTELOPEV2_DETECTOR,
    ),
)

INSIGHTFACE_MODEL = ANTELOPEV2.folder.rsplit("/", 1)[-1]
"""The insightface model PuLID was trained with, by the name the loader lists: its folder in insightface/models."""

# facexlib hosts its weights as GitHub release assets; GitHub publishes no digest for these old
# assets, so the hashes are the Git LFS sha256 of byte-identical copies on Hugging Face
# (same size; e.g. fofr/comfyui facedetection/ holds both files).
FACEXLIB_DETECTION = ModelFile(
    name="facexlib_detection",
    filename="detection_Resnet50_Final.pth",
    folder="facexlib",
    urls=("https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",),
    size=109497761,
    sha256="6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
    sha256_source="Git LFS sha256 of the same file on huggingface.co/fofr/comfyui (facedetection/)",
    description="facexlib RetinaFace-ResNet50 (face alignment for EVA-CLIP)",
)

FACEXLIB_PARSING = ModelFile(
    name="facexlib_parsing",
    filename="parsing_bisenet.pth",
    folder="facexlib",
    urls=("https://github.com/xinntao/facexlib/releases/download/v0.2.0/parsing_bisenet.pth",),
    size=53289463,
    sha256="468e13ca13a9b43cc0881a9f99083a430e9c0a38abd935431d1c28ee94b26567",
    sha256_source="Git LFS sha256 of the same file on huggingface.co/martintomov/comfy (facedetection/)",
    description="facexlib BiSeNet face parsing (background removal for EVA-CLIP)",
)

FETCH_COMMAND = "python -m pulid_cli fetch-models --models-dir <ComfyUI>/models"
"""What messages tell a user to run: it installs every default entry above (run from the pack's folder)."""

CATALOG: tuple[ModelFile, ...] = (
    PULID_V1_1, PULID_V1, EVA_CLIP, ANTELOPEV2, FACEXLIB_DETECTION, FACEXLIB_PARSING,
)


def member_dirs(entry: ModelFile, folder) -> tuple[str, ...]:
    """Where `entry`'s files may be in `folder`: the folder itself and, for an archive that keeps its members in
    a folder of its own, that folder inside it (`<folder>/antelopev2`: the zip unpacked as is, not flat)."""
    folder = os.fspath(folder)
    return (folder, os.path.join(folder, entry.zip_folder)) if entry.zip_folder else (folder,)


def find_installed(entry: ModelFile, models_dir, names=()) -> str | None:
    """The first folder under `models_dir` that holds all of `names` (default: every file `entry` installs),
    looking in each of `entry.folders` in turn and in its `member_dirs`; None when no folder holds them all."""
    wanted = tuple(names) or entry.installed_names()
    for folder in entry.folders:
        for candidate in member_dirs(entry, os.path.join(os.fspath(models_dir), *folder.split("/"))):
            if all(os.path.isfile(os.path.join(candidate, name)) for name in wanted):
                return candidate
    return None


def find(name, catalog=CATALOG) -> ModelFile:
    """The entry called `name` (the --only name, or a file name it installs)."""
    for entry in catalog:
        if name == entry.name or name == entry.filename or name in entry.installed_names():
            return entry
    known = ", ".join(e.name for e in catalog)
    raise KeyError(f"unknown model {name!r}; known names: {known}")
