"""Cost of a face detail pass's own steps: Crop Face and Paste Face against one SDXL sampling step at working size.

    COMFYUI_PATH=/path/to/ComfyUI .venv/bin/python -m bench.regions [--size 1024] [--picture 1024]

Crop (box, resize to the working size, the feathered mask) and paste (resize back, composite through the mask) of
one face in a picture, both from pulid.face_crop on a detected face box; the step is one euler step of a real-size
random SDXL UNet at the working size with CFG (both halves), the step a detail pass samples. Detection is not
counted: the face encoder's detector runs once per picture in any detailer. Target: crop + paste <= 5 % of a step.
"""

import torch

from bench.common import DTYPES, base_parser, build_sdxl, interleaved, log, machine, median, report, sample, start_comfy


def crop_and_paste(picture, faces, settings):
    from pulid.face_crop import crop_faces, paste_faces

    crops, _, geometry = crop_faces(picture, faces, settings)
    return paste_faces(picture, crops, geometry)


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--size", type=int, default=1024, help="working size (the crop's side, sampled)")
    parser.add_argument("--picture", type=int, default=1024, help="side of the picture the face is in")
    args = parser.parse_args()
    start_comfy(args.comfyui, args.device)
    from pulid.detector import DetectedFace
    from pulid.face_crop import CropSettings

    side = args.picture // 10  # a ~100 px face in a 1024 picture: the case a detail pass is for
    centre = args.picture / 2
    face = DetectedFace(bbox=(centre - side / 2, centre - side / 2, centre + side / 2, centre + side / 2), score=0.9,
                        kps=None, embedding=None)
    picture = torch.rand(1, args.picture, args.picture, 3, generator=torch.Generator().manual_seed(0))
    settings = CropSettings(working_size=args.size)
    unet = build_sdxl(args.device, DTYPES[args.dtype])
    sample(unet, args.size, steps=1)  # warm-up: the UNet on its device
    crop_and_paste(picture, [[face]], settings)
    times = interleaved({"one sampling step": lambda: sample(unet, args.size, steps=1),
                         "crop + paste": lambda: crop_and_paste(picture, [[face]], settings)}, args.reps, args.device)
    step, regions = median(times["one sampling step"]), median(times["crop + paste"])
    log.info("%s; picture %d², working size %d, %s %s", machine(), args.picture, args.size, args.device, args.dtype)
    report("a detail pass's own work against one sampling step (medians)",
           [("one sampling step", f"{step:.3f} s", "1.000"),
            ("crop + paste", f"{regions * 1e3:.1f} ms", f"{regions / step:.4f}")])


if __name__ == "__main__":
    main()
