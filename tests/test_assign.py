"""pulid.assign: reference k to the k-th face from the left, on pictures composed by testkit.faces and found by
the synthetic antelopev2 detector; fewer faces than references is an error naming both counts, more is fine."""
import pytest

from pulid.assign import check_person, face_of_person
from pulid.detector import FaceDetector
from pulid.errors import FaceNotFoundError, PulidError
from pulid.regions import ALL_FACES, detect_faces
from testkit import make_face_models as mfm
from testkit.faces import compose_faces
from testkit.make_face_models import image_batch


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return FaceDetector(mfm.write_antelopev2(str(tmp_path_factory.mktemp("antelopev2"))), providers="CPU")


def centre_x(face):
    return (face.bbox[0] + face.bbox[2]) / 2


def found(detector, pictures):
    return detect_faces(detector, image_batch(*pictures), ALL_FACES, skip_faceless=True)


def test_person_k_gets_the_kth_face_from_the_left(detector):
    # Drawn right to left and of different sizes: the order is by position, not by drawing order or size.
    picture, boxes = compose_faces(640, 1024, [(820, 320, 150), (512, 300, 100), (200, 330, 130)])
    faces = found(detector, [picture])
    left_to_right = sorted(boxes, key=lambda box: box[0])
    for person in (1, 2, 3):
        (chosen,), = face_of_person(faces, person, 3)
        x, y, w, h = left_to_right[person - 1]
        assert abs(centre_x(chosen) - (x + w / 2)) < w / 4


def test_each_picture_of_a_batch_is_paired_on_its_own(detector):
    first, _ = compose_faces(640, 1024, [(200, 320, 120), (800, 320, 120)])
    second, _ = compose_faces(640, 1024, [(400, 320, 120), (700, 320, 120)])
    chosen = face_of_person(found(detector, [first, second]), 2, 2)
    assert 700 < centre_x(chosen[0][0]) < 900 and 600 < centre_x(chosen[1][0]) < 800


def test_extra_faces_are_left_out(detector):
    picture, _ = compose_faces(640, 1024, [(200, 320, 120), (512, 320, 120), (820, 320, 120)])
    faces = found(detector, [picture])
    chosen = [face_of_person(faces, person, 2)[0][0] for person in (1, 2)]
    rightmost = max(faces[0], key=centre_x)
    assert all(face is not rightmost for face in chosen)


@pytest.mark.parametrize("drawn", [0, 1])
def test_fewer_faces_than_references_names_both_counts(detector, drawn):
    picture, _ = compose_faces(640, 1024, [(300, 320, 120)][:drawn])
    with pytest.raises(FaceNotFoundError, match=rf"Picture 0 of `images` shows {drawn} face\(s\) but `references` "
                                                r"holds 2 photo\(s\)") as error:
        face_of_person(found(detector, [picture]), 1, 2)
    assert error.value.image_index == 0


def test_the_short_picture_of_a_batch_is_named(detector):
    two, _ = compose_faces(640, 1024, [(200, 320, 120), (800, 320, 120)])
    one, _ = compose_faces(640, 1024, [(200, 320, 120)])
    with pytest.raises(FaceNotFoundError, match=r"Picture 1 of `images` shows 1 face\(s\)"):
        face_of_person(found(detector, [two, one]), 1, 2)


@pytest.mark.parametrize("person, people, message", [
    (1, 0, r"`references` is empty"),
    (3, 2, r"`person` is 3 but `references` holds 2 photo\(s\)"),
    (0, 2, r"`person` is 0"),
])
def test_person_outside_the_references_names_the_input(person, people, message):
    with pytest.raises(PulidError, match=message):
        check_person(person, people)
