"""Several people in one picture: reference photo k goes to the k-th face from the left.

Where the people of a group stand is decided by the prompt and the seed, not by a mask drawn beforehand: a first
pass draws the group, the detector finds its faces, and the references are paired with them in reading order
(left to right), the order an artist lines the photos up in. The rule the pairing keeps:

- fewer faces than references is an error naming both counts (a reference without a face would be dropped
  silently, and the identity of that person would be missing from a picture that looks finished);
- more faces than references is fine: the faces right of the last assigned one get no identity and keep the
  face the first pass drew (a crowd behind two people is normal).

Detection itself is `pulid.regions.detect_faces` with the choice "all" (every face, left to right).
"""
import logging

from .errors import FaceNotFoundError, PulidError

logger = logging.getLogger(__name__)


def check_person(person, people):
    """`person` (1-based) among `people` references; errors name the input to change."""
    if people < 1:
        raise PulidError("`references` is empty: give one reference photo per person (a batch, e.g. Batch Images).")
    if not 1 <= person <= people:
        raise PulidError(f"`person` is {person} but `references` holds {people} photo(s): pick a person from 1 to "
                         f"{people}, or add their photo to `references`.")


def face_of_person(faces_per_picture, person, people):
    """Face `person` (1-based, from the left) of each picture, as a one-face list per picture.

    faces_per_picture: each picture's faces left to right (`detect_faces(..., "all", skip_faceless=True)`).
    A picture with fewer faces than `people` is a FaceNotFoundError naming the picture and both counts.
    """
    check_person(person, people)
    chosen = []
    for index, faces in enumerate(faces_per_picture):
        if len(faces) < people:
            raise FaceNotFoundError(
                f"Picture {index} of `images` shows {len(faces)} face(s) but `references` holds {people} photo(s): "
                f"each reference needs a face of its own. Ask the prompt for {people} people (or a seed that "
                f"draws them all), or remove references.", index)
        if len(faces) > people and person == people:
            logger.info("PuLID: picture %d shows %d faces for %d references; faces %d to %d keep the first "
                        "pass's look", index, len(faces), people, people + 1, len(faces))
        chosen.append([faces[person - 1]])
    return chosen
