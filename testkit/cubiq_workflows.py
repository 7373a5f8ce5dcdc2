"""Workflows in the format of cubiq's PuLID_ComfyUI, built here for the migration tests (UI and API).

They use every node and widget of that pack (ApplyPulid's method/weight/start_at/end_at, ApplyPulidAdvanced's
weight/projection/fidelity/noise/start_at/end_at, the attention mask, the InsightFace provider), two applies on
the same photo, one on another photo, and an unrelated node pack (an IP-Adapter-like node) in the same graph.
Node ids and widget orders are those of cubiq's nodes (read from its pulid.py); values are ours.
"""
import copy

PULID_FILE = "ip-adapter_pulid_sdxl_fp16.safetensors"
CKPT = "sd_xl_base_1.0.safetensors"

# id, type, widgets, inputs [(name, type)], outputs [(name, type)], pos
NODES = [
    (4, "CheckpointLoaderSimple", [CKPT], [], [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")], [-100, -260]),
    (16, "PulidModelLoader", [PULID_FILE], [], [("PULID", "PULID")], [-20, 20]),
    (19, "PulidEvaClipLoader", [], [], [("EVA_CLIP", "EVA_CLIP")], [130, 120]),
    (17, "PulidInsightFaceLoader", ["CUDA"], [], [("FACEANALYSIS", "FACEANALYSIS")], [60, 190]),
    (12, "LoadImage", ["face.png", "image"], [], [("IMAGE", "IMAGE"), ("MASK", "MASK")], [-120, 320]),
    (13, "LoadImage", ["face2.png", "image"], [], [("IMAGE", "IMAGE"), ("MASK", "MASK")], [-120, 900]),
    (40, "SolidMask", [1.0, 1024, 1024], [], [("MASK", "MASK")], [-120, 1500]),
    (33, "ApplyPulid", ["style", 0.7, 0.1, 0.9],
     [("model", "MODEL"), ("pulid", "PULID"), ("eva_clip", "EVA_CLIP"), ("face_analysis", "FACEANALYSIS"),
      ("image", "IMAGE"), ("attn_mask", "MASK")], [("MODEL", "MODEL")], [350, -10]),
    (34, "ApplyPulid", ["neutral", 1.1, 0.0, 1.0],
     [("model", "MODEL"), ("pulid", "PULID"), ("eva_clip", "EVA_CLIP"), ("face_analysis", "FACEANALYSIS"),
      ("image", "IMAGE")], [("MODEL", "MODEL")], [350, 300]),
    (35, "ApplyPulidAdvanced", [0.9, "ortho", 12, 0.2, 0.05, 0.8],
     [("model", "MODEL"), ("pulid", "PULID"), ("eva_clip", "EVA_CLIP"), ("face_analysis", "FACEANALYSIS"),
      ("image", "IMAGE"), ("attn_mask", "MASK")], [("MODEL", "MODEL")], [350, 620]),
    (50, "IPAdapterStandIn", [0.5], [("model", "MODEL"), ("image", "IMAGE")], [("MODEL", "MODEL")], [750, 620]),
    (22, "CLIPTextEncode", ["closeup portrait, watercolor"], [("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")],
     [340, -430]),
    (23, "CLIPTextEncode", ["blurry"], [("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")], [330, -260]),
    (5, "EmptyLatentImage", [1024, 1024, 1], [], [("LATENT", "LATENT")], [750, -430]),
    (3, "KSampler", [51, "fixed", 30, 6, "dpmpp_2m", "sgm_uniform", 1],
     [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("latent_image", "LATENT")],
     [("LATENT", "LATENT")], [1100, -270]),
    (8, "VAEDecode", [], [("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")], [1500, -270]),
    (9, "SaveImage", ["pulid"], [("images", "IMAGE")], [], [1750, -270]),
]
# id, from node, from slot, to node, to slot, type
LINKS = [
    (1, 4, 0, 33, 0, "MODEL"), (2, 16, 0, 33, 1, "PULID"), (3, 19, 0, 33, 2, "EVA_CLIP"),
    (4, 17, 0, 33, 3, "FACEANALYSIS"), (5, 12, 0, 33, 4, "IMAGE"), (6, 40, 0, 33, 5, "MASK"),
    (7, 33, 0, 34, 0, "MODEL"), (8, 16, 0, 34, 1, "PULID"), (9, 19, 0, 34, 2, "EVA_CLIP"),
    (10, 17, 0, 34, 3, "FACEANALYSIS"), (11, 12, 0, 34, 4, "IMAGE"),
    (12, 34, 0, 35, 0, "MODEL"), (13, 16, 0, 35, 1, "PULID"), (14, 19, 0, 35, 2, "EVA_CLIP"),
    (15, 17, 0, 35, 3, "FACEANALYSIS"), (16, 13, 0, 35, 4, "IMAGE"), (17, 40, 0, 35, 5, "MASK"),
    (18, 35, 0, 50, 0, "MODEL"), (19, 13, 0, 50, 1, "IMAGE"), (20, 50, 0, 3, 0, "MODEL"),
    (21, 4, 1, 22, 0, "CLIP"), (22, 4, 1, 23, 0, "CLIP"), (23, 22, 0, 3, 1, "CONDITIONING"),
    (24, 23, 0, 3, 2, "CONDITIONING"), (25, 5, 0, 3, 3, "LATENT"), (26, 3, 0, 8, 0, "LATENT"),
    (27, 4, 2, 8, 1, "VAE"), (28, 8, 0, 9, 0, "IMAGE"),
]
SIZES = {"ApplyPulid": [315, 210], "ApplyPulidAdvanced": [315, 280], "LoadImage": [320, 500]}


def ui(without=()):
    """The UI workflow (node ids in `without` and their links left out)."""
    nodes = []
    links = [list(link) for link in LINKS if link[1] not in without and link[3] not in without]
    for order, (nid, kind, widgets, inputs, outputs, pos) in enumerate(NODES):
        if nid in without:
            continue
        ins = [{"name": n, "type": t, "link": next((l[0] for l in links if l[3] == nid and l[4] == s), None)}
               for s, (n, t) in enumerate(inputs)]
        outs = [{"name": n, "type": t, "links": [l[0] for l in links if l[1] == nid and l[2] == s],
                 "slot_index": s} for s, (n, t) in enumerate(outputs)]
        nodes.append({"id": nid, "type": kind, "pos": list(pos), "size": SIZES.get(kind, [300, 120]),
                      "flags": {}, "order": order, "mode": 0, "inputs": ins, "outputs": outs,
                      "properties": {"Node name for S&R": kind}, "widgets_values": list(widgets)})
    return {"last_node_id": max(n[0] for n in NODES), "last_link_id": max(l[0] for l in LINKS), "nodes": nodes,
            "links": links, "groups": [{"title": "PuLID", "bounding": [-140, -60, 860, 1100], "color": "#3f789e"}],
            "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4}


WIDGETS = {"CheckpointLoaderSimple": ("ckpt_name",), "PulidModelLoader": ("pulid_file",), "PulidEvaClipLoader": (),
           "PulidInsightFaceLoader": ("provider",), "LoadImage": ("image", "upload"), "SolidMask": ("value", "width",
                                                                                                     "height"),
           "ApplyPulid": ("method", "weight", "start_at", "end_at"),
           "ApplyPulidAdvanced": ("weight", "projection", "fidelity", "noise", "start_at", "end_at"),
           "IPAdapterStandIn": ("weight",), "CLIPTextEncode": ("text",),
           "EmptyLatentImage": ("width", "height", "batch_size"),
           "KSampler": ("seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"),
           "VAEDecode": (), "SaveImage": ("filename_prefix",)}


def api(without=()):
    """The same graph as an API-format prompt."""
    prompt = {}
    for nid, kind, widgets, inputs, _, _ in NODES:
        if nid in without:
            continue
        values = {k: v for k, v in zip(WIDGETS[kind], widgets) if k not in ("upload", "control_after_generate")}
        for link in LINKS:
            if link[3] == nid and link[1] not in without:
                values[inputs[link[4]][0]] = [str(link[1]), link[2]]
        prompt[str(nid)] = {"class_type": kind, "inputs": values, "_meta": {"title": kind}}
    return copy.deepcopy(prompt)
