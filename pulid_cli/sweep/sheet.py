"""The contact sheet of a sweep: every image as a thumbnail with its three numbers, one picture to look at first."""
import io

from .grid import format_weight
from .report import number_text


def contact_sheet(rows, folder, thumb=160):
    """One picture: a row per face x method x weight (baselines on top), a column per prompt x seed,
    the scores under each image; the prompts listed below. Returns PNG bytes."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=max(10, thumb // 12))
    columns = list(dict.fromkeys((row.job.prompt, row.job.seed) for row in rows))
    row_keys = list(dict.fromkeys((row.job.face, row.job.method, row.job.weight) for row in
                                  sorted(rows, key=lambda r: not r.job.baseline)))
    prompts = list(dict.fromkeys(p for p, _ in columns))
    by_cell = {((r.job.face, r.job.method, r.job.weight), (r.job.prompt, r.job.seed)): r for r in rows}
    line = font.size + 4
    label_w, head_h, text_h = thumb, line * 2, line * 2 + 4
    width = label_w + len(columns) * (thumb + 4)
    height = head_h + len(row_keys) * (thumb + text_h) + (len(prompts) + 1) * line
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, (prompt, seed) in enumerate(columns):
        draw.text((label_w + c * (thumb + 4), 4), f"P{prompts.index(prompt) + 1} seed {seed}", fill=(0, 0, 0),
                  font=font)
    for r, key in enumerate(row_keys):
        top = head_h + r * (thumb + text_h)
        face, method, weight = key
        label = "baseline\n(weight 0)" if face is None else f"{face}\n{method}\nweight {format_weight(weight)}"
        draw.multiline_text((4, top + 4), label, fill=(0, 0, 0), font=font)
        for c, column in enumerate(columns):
            row = by_cell.get((key, column))
            left = label_w + c * (thumb + 4)
            if row is None or not (folder / row.job.name).exists():
                # no row: not rendered yet, or rendered before its baseline (scored once the baseline is there)
                gap = "not scored yet" if row is None else "image missing"
                draw.text((left + 4, top + thumb // 2), gap, fill=(160, 160, 160), font=font)
                continue
            with Image.open(folder / row.job.name) as image:
                image = image.convert("RGB")
                image.thumbnail((thumb, thumb))
                sheet.paste(image, (left, top))
                shown = image.height
            if row.job.baseline:
                numbers = f"CLIP-T {number_text(row.adherence, 1, '?')}"
            else:
                numbers = (f"face {number_text(row.likeness, 3, 'none')}  CLIP-T {number_text(row.adherence, 1, '?')}\n"
                           f"kept {number_text(row.preservation, 3, '?')}")
            draw.multiline_text((left, top + shown + 2), numbers, fill=(0, 0, 0), font=font, spacing=2)
    top = head_h + len(row_keys) * (thumb + text_h) + line // 2
    for i, prompt in enumerate(prompts):
        draw.text((4, top + i * line), f"P{i + 1}: {prompt}", fill=(0, 0, 0), font=font)
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def png_bytes(pixels) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()
