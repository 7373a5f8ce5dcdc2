"""Lay out the shipped workflows (workflows/*.json) so an artist reads each at a glance.

    .venv/bin/python -m tools.relayout          # rewrites the node positions, groups, notes and reroutes

Each workflow is given here as columns of node ids, left to right (the loaders first, the saved image
last, every node right of its inputs), each node with the y of its top, groups that frame the roles and one
Note that says what to change first; workflow_files.layout.arrange places them and routes the wires
through reroutes.
tests/test_workflow_layout.py checks the result from the JSON (no wire through a node, no overlap, one
1600x1000 screen at zoom 1), so a change here that breaks it fails the tests, not an artist's eye.
"""
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from workflow_files import layout
from workflow_files.geometry import extent
from workflow_files.graph import Node, Workflow
from testkit.layout_checks import crossings, overlaps

REPO = Path(__file__).resolve().parents[1]

log = logging.getLogger("relayout")

# Body sizes (title bar excluded): the frontend's own minimum (computeSize, 1.49) where that reads well,
# wider text boxes and room for the pictures a run shows.
SIZES = {
    "CheckpointLoaderSimple": (262, 98), "PuLIDSDXLModelLoader": (262, 58), "PuLIDSDXLFaceEncoderLoader": (262, 106),
    "PuLIDSDXLLoadEmbeds": (262, 58), "LoadImage": (224, 326), "PuLIDSDXLEncodeFace": (220, 170),
    "PreviewImage": (220, 100), "PuLIDSDXLApply": (220, 190), "PuLIDSDXLApplyAdvanced": (250, 214),
    "CLIPTextEncode": (220, 100), "EmptyLatentImage": (220, 106), "KSampler": (220, 262), "VAEDecode": (150, 46),
    "SaveImage": (220, 290), "PuLIDSDXLSaveEmbeds": (252, 58), "LatentBatch": (150, 46),
    "PuLIDSDXLFaceSimilarity": (230, 98), "PreviewAny": (220, 160), "SolidMask": (210, 106),
    "MaskComposite": (210, 126), "InvertMask": (150, 26), "Note": (220, 220), "PuLIDSDXLEvaluate": (220, 260),
    "PuLIDSDXLCropFace": (224, 242), "PuLIDSDXLPasteFace": (200, 66), "VAEEncode": (150, 46),
    "SetLatentNoiseMask": (170, 46), "PuLIDSDXLFaceMask": (224, 150), "PuLIDSDXLBestByLikeness": (246, 122),
    "PuLIDSDXLAssignFace": (210, 190), "ImageBatch": (166, 46),
}


@dataclass
class Plan:
    columns: list  # [[(node id, y), ...], ...] left to right
    groups: list  # [(title, [node ids]), ...]
    sizes: dict = field(default_factory=dict)  # node id -> (w, h) where the table above is not right


def _single_identity():
    """pulid_basic, pulid_lightning and pulid_advanced: one face, one Apply (#7)."""
    return Plan(
        columns=[[(1, 70), (2, 230), (3, 350), (4, 580)],
                 [(5, 580)],
                 [(10, 70), (11, 225), (12, 375), (7, 580), (6, 840)],
                 [(13, 70), ("note", 470)],
                 [(14, 70)],
                 [(15, 70)]],
        groups=[("Models", [1, 2, 3]), ("Identity (PuLID)", [4, 5, 6, 7]), ("Prompt", [10, 11, 12]),
                ("Sample & save", [13, 14, 15])],
        sizes={6: (230, 100)})


KNOBS = ("The three knobs:\n"
         "- weight (Apply): 0.8 is the official v1.1 value; lower it (to 0.6) when the prompt's style is lost, "
         "raise it (up to 1.2) for a closer likeness.\n"
         "- method: fidelity for likeness, style when the prompt matters more.\n"
         "- the photo (Load Image): one sharp, front-lit face; a batch of photos of the same person averages out.")
NOTES = {
    "pulid_lightning": KNOBS + "\nLightning: keep the sampler's steps and cfg as the model card says.",
    "pulid_advanced": KNOBS.replace("- method: fidelity for likeness, style when the prompt matters more.",
                                    "- ortho and num_zero (Apply Advanced) replace the method presets: for v1.1 "
                                    "fidelity is ortho v2 + 20 zero tokens, style v1 + 40."),
    "pulid_reuse_embeds": KNOBS.replace("- the photo (Load Image): one sharp, front-lit face; a batch of photos of "
                                        "the same person averages out.",
                                        "- the embeddings file: saved once by pulid_save_embeds, no face models "
                                        "needed here."),
    "pulid_save_embeds": "Encode a face once, reuse it everywhere:\n- the photo: one sharp, front-lit face (or a "
                         "batch of one person).\n- face: which face in a group photo.\n- filename_prefix: the name "
                         "Load PuLID Embeddings lists (models/pulid_sdxl_embeds).",
    "pulid_two_identities": "The three knobs:\n- weight (each Apply): lower it (0.6 to 0.8) when the prompt's "
                            "style is lost.\n- the masks (Solid Mask, Combine Masks): white = where the first face "
                            "goes; the second Apply gets the inverse.\n- the photos (Load Image): one sharp, "
                            "front-lit face each.",
    "pulid_similarity_sweep": "Which weight keeps the likeness? Three Apply nodes (weights 0.4, 0.8, 1.2), same "
                              "seed; Face Similarity scores each result against the photo (1 = same face).\n"
                              "- change the weights in the Apply titles and widgets.\n- method: fidelity or style.\n"
                              "- the photo: one sharp, front-lit face.",
    "pulid_face_fix": "This face into a picture that exists:\n- Picture, Face photo (one sharp face).\n- denoise "
                      "(KSampler): 0.55; raise it (0.7) for likeness, lower it to keep more.\n- weight (Apply): "
                      "0.8; face (Crop Face): which face.\n- Edit report: outside mask max diff 0 = the rest "
                      "untouched.",
    "pulid_best_of_batch": "Four seeds, the likest kept:\n- batch_size (Empty Latent Image): how many to draw; "
                           "k (Best by Likeness): how many to keep, likest first.\n- Likeness scores: each "
                           "image's number (the ones Face Similarity gives), faceless ones last.\n- weight "
                           "(Apply): 0.8; the photo: one sharp, front-lit face.",
    "pulid_group_faces": "Several people, one face each:\n- photos: person 1 gets the leftmost face of the "
                         "first pass, person 2 the next.\n- the prompt: how many people, where.\n- denoise "
                         "(Second pass): 0.6; raise it for likeness, lower it to keep the first picture.\n"
                         "- weight (each Apply): 1.0.",
    "pulid_tradeoff": "Likeness or prompt? One seed without PuLID (the baseline) and at weight 0.8 with "
                      "fidelity and with style; Evaluate scores all three.\n- change the weight or method in an "
                      "Apply, and its line in Evaluate's labels.\n- keep Evaluate's prompt the same as the "
                      "sampler's.\n- chart: up = more like the photo, right = closer to the prompt.",
}


def plans():
    single = _single_identity()
    return {
        "pulid_basic": single,
        "pulid_lightning": single,
        "pulid_advanced": single,
        "pulid_reuse_embeds": Plan(
            columns=[[(1, 70), (2, 230), (3, 580)],
                     [(10, 70), (11, 225), (12, 375), (7, 580)],
                     [(13, 70), ("note", 470)],
                     [(14, 70)],
                     [(15, 70)]],
            groups=[("Models", [1, 2]), ("Identity (PuLID)", [3, 7]), ("Prompt", [10, 11, 12]),
                    ("Sample & save", [13, 14, 15])],
            ),
        "pulid_save_embeds": Plan(
            columns=[[(2, 70), (3, 190), (4, 420)],
                     [(5, 420), ("note", 70)],
                     [(7, 420), (6, 530)]],
            groups=[("Models", [2, 3]), ("Identity (PuLID)", [4, 5, 6, 7])],
            ),
        "pulid_two_identities": Plan(
            columns=[[(1, 70), (2, 230), (3, 350), (8, 560), (9, 720)],
                     [(4, 70), (5, 440), (20, 810)],
                     [(6, 70), (7, 440), (21, 810)],
                     [(22, 70), (23, 300), (10, 570), (11, 700)],
                     [(13, 70), (12, 420), ("note", 600)],
                     [(14, 70), (15, 190)]],
            groups=[("Models", [1, 2, 3]), ("Masks", [8, 9]), ("Identity (PuLID)", [4, 5, 6, 7, 20, 21]),
                    ("Apply (PuLID)", [22, 23]), ("Prompt", [10, 11]), ("Sample", [12, 13]), ("Save", [14, 15])],
            sizes={4: (224, 314), 5: (224, 314), 10: (220, 90), 11: (220, 90)}),
        "pulid_similarity_sweep": Plan(
            columns=[[(1, 70), (2, 230), (3, 350), (4, 580)],
                     [(10, 70), (11, 225), (12, 375), (5, 580)],
                     [(6, 70), (7, 330), (8, 590)],
                     [(13, 70), (14, 372), (15, 674)],
                     [(16, 70), (17, 160), (18, 250), (19, 340)],
                     [(20, 70), (21, 400), ("note", 620)]],
            groups=[("Models", [1, 2, 3]), ("Prompt", [10, 11, 12]), ("Identity (PuLID)", [4, 5]),
                    ("Apply (PuLID)", [6, 7, 8]),
                    ("Sample", [13, 14, 15]), ("Score", [16, 17, 18, 19]), ("Results", [20, 21])],
            sizes={i: (210, SIZES[t][1]) for i, t in ((6, "PuLIDSDXLApply"), (7, "PuLIDSDXLApply"),
                                                      (8, "PuLIDSDXLApply"), (13, "KSampler"), (14, "KSampler"),
                                                      (15, "KSampler"), (20, "SaveImage"), (21, "PreviewAny"),
                                                      ("note", "Note"))}),
        "pulid_face_fix": Plan(
            columns=[[(1, 70), (2, 230), (3, 350), (4, 580)],
                     [(8, 70), (5, 580)],
                     [(9, 70), (7, 580)],
                     [(12, 70), (16, 170), (10, 490), (11, 645)],
                     [(13, 70), (14, 390), ("note", 500), (19, 740)],
                     [(17, 70), (15, 200), (20, 480), (21, 806)]],
            groups=[("Models", [1, 2, 3]), ("Identity (PuLID)", [4, 5, 7]), ("Face crop", [8, 9, 12, 16]),
                    ("Prompt", [10, 11]), ("Detail pass", [13, 14]), ("Paste back", [17, 15]),
                    ("Face region", [19]), ("Edit check", [20, 21])],
            sizes={1: (224, 98), 2: (224, 58), 3: (224, 106), 4: (224, 326), 19: (210, 150), 20: (230, 270),
                   21: (230, 122), 15: (230, 200), 17: (230, 66), "note": (210, 160), 13: (210, 262),
                   10: (210, 100), 11: (210, 100)}),
        "pulid_best_of_batch": Plan(
            columns=[[(1, 70), (2, 230), (3, 350), (4, 580)],
                     [(5, 580)],
                     [(10, 70), (11, 225), (12, 375), (7, 580), (6, 840)],
                     [(13, 70), ("note", 470)],
                     [(14, 70), (17, 450)],
                     [(15, 70), (18, 450)]],
            groups=[("Models", [1, 2, 3]), ("Identity (PuLID)", [4, 5, 6, 7]), ("Prompt", [10, 11, 12]),
                    ("Sample", [13, 14]), ("Keep the likest", [17, 18]), ("Save", [15])],
            sizes={6: (230, 100), 18: (220, 122)}),
        "pulid_group_faces": Plan(
            columns=[[(1, 70), (2, 220), (3, 330), (4, 520)],
                     [(10, 70), (11, 200), (12, 330), (5, 520)],
                     [(13, 70), (14, 388), (16, 520)],
                     [(17, 70), (18, 310), (7, 584)],
                     [(6, 70), (22, 296), (23, 584)],
                     [(20, 70), (21, 388), (15, 490), ("note", 790)]],
            groups=[("Models", [1, 2, 3]), ("Prompt", [10, 11, 12]), ("First pass", [13, 14]),
                    ("Identity (PuLID)", [4, 5, 16]), ("Assign faces", [17, 18]), ("Person 1", [6, 22]),
                    ("Person 2", [7, 23]), ("Second pass & save", [20, 21, 15])],
            sizes={1: (224, 98), 2: (224, 58), 3: (224, 106), 10: (210, 88), 11: (210, 88), 4: (224, 314),
                   5: (224, 314), 6: (210, 170), 7: (210, 170), 22: (210, 190),
                   23: (210, 190), 13: (210, 262), 20: (210, 262), 15: (210, 250), "note": (210, 160)}),
        "pulid_tradeoff": Plan(
            columns=[[(1, 70), (2, 230), (3, 350), (4, 580)],
                     [(10, 70), (11, 225), (12, 375), (5, 580)],
                     [(6, 70), (7, 310), (13, 630)],
                     [(14, 70), (15, 372), (18, 674), (19, 770), (23, 866)],
                     [(22, 70), (24, 166)],
                     [(25, 70), (26, 360), ("note", 650)]],
            groups=[("Models", [1, 2, 3]), ("Prompt", [10, 11, 12]), ("Identity (PuLID)", [4, 5]),
                    ("Apply (PuLID)", [6, 7]),
                    ("Sample", [14, 15, 18, 19, 23]), ("Evaluate", [22, 24]), ("Results", [25, 26])],
            sizes={i: (210, SIZES[t][1]) for i, t in ((6, "PuLIDSDXLApply"), (7, "PuLIDSDXLApply"), (13, "KSampler"),
                                                      (14, "KSampler"), (15, "KSampler"), (25, "SaveImage"),
                                                      (26, "SaveImage"), ("note", "Note"))}
            | {24: (230, 300), 25: (210, 240), 26: (210, 240)}),
    }


def arrange(workflow, plan, note_text):
    """Place, group and route `workflow` (a graph.Workflow) by `plan`, with a Note of `note_text` where the plan
    says "note"."""
    workflow.nodes = [n for n in workflow.nodes if n.type not in ("Note", "MarkdownNote")]
    nodes = {n.id: n for n in workflow.nodes}
    note = Node(max(nodes) + 1, "Note", pos=[0, 0], size=[0, 0], flags={}, order=0, mode=0, inputs=[], outputs=[],
                properties={}, widgets_values=[note_text], title="Start here")
    workflow.nodes.append(note)
    workflow.last_node_id = note.id  # the frontend numbers new nodes from it
    nodes[note.id] = note
    columns = [[(note.id if i == "note" else i, y) for i, y in column] for column in plan.columns]
    sizes = {i: plan.sizes.get("note" if i == note.id else i) or SIZES[n.type] for i, n in nodes.items()}
    return layout.arrange(workflow, columns, sizes, plan.groups)


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, plan in plans().items():
        path = REPO / "workflows" / f"{name}.json"
        workflow = Workflow.from_dict(json.loads(path.read_text(encoding="utf-8")))
        arrange(workflow, plan, NOTES.get(name, KNOBS))
        path.write_text(json.dumps(workflow.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        box = extent(workflow)
        log.info("%s: %dx%d, wires through nodes %s, overlaps %s", name, box.width, box.height,
                 crossings(workflow), overlaps(workflow))


if __name__ == "__main__":
    main()
