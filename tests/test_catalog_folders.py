"""Where an installed model file is found: every folder the catalog lists for it, and the zip unpacked as is."""
import os

from pulid.catalog import ANTELOPEV2, ANTELOPEV2_DETECTOR, ANTELOPEV2_RECOGNIZER, EVA_CLIP, PULID_V1_1, \
    find_installed, member_dirs

USED = (ANTELOPEV2_DETECTOR.filename, ANTELOPEV2_RECOGNIZER.filename)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_eva_clip_is_found_in_each_of_its_folders_the_fetch_target_first(tmp_path):
    assert EVA_CLIP.folders == ("clip_vision", "pulid") and PULID_V1_1.folders == ("pulid",)
    assert find_installed(EVA_CLIP, tmp_path) is None
    _touch(tmp_path / "pulid" / EVA_CLIP.filename)
    assert find_installed(EVA_CLIP, tmp_path) == str(tmp_path / "pulid")
    _touch(tmp_path / "clip_vision" / EVA_CLIP.filename)
    assert find_installed(EVA_CLIP, tmp_path) == str(tmp_path / "clip_vision")


def test_antelopev2_is_found_flat_or_as_the_zip_unpacks(tmp_path):
    folder = tmp_path / "insightface" / "models" / "antelopev2"
    assert member_dirs(ANTELOPEV2, folder) == (str(folder), str(folder / "antelopev2"))
    assert member_dirs(EVA_CLIP, folder) == (str(folder),)
    for name in USED:
        _touch(folder / "antelopev2" / name)
    assert find_installed(ANTELOPEV2, tmp_path, USED) == str(folder / "antelopev2")
    assert find_installed(ANTELOPEV2, tmp_path) is None  # the three other members are not there
    for name in USED:
        _touch(folder / name)
    assert find_installed(ANTELOPEV2, tmp_path, USED) == str(folder)
    os.remove(folder / USED[0])
    assert find_installed(ANTELOPEV2, tmp_path, USED) == str(folder / "antelopev2")  # never half of each
