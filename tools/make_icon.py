"""Draw the Comfy Registry icon, docs/icon.png (400 x 400): a face outline inside an identity frame.

    python -m tools.make_icon
"""
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 400
OUT = Path(__file__).resolve().parents[1] / "docs" / "icon.png"


def draw():
    image = Image.new("RGB", (SIZE, SIZE))
    pixels = image.load()
    for y in range(SIZE):  # diagonal gradient, deep blue to violet
        for x in range(SIZE):
            t = (x + y) / (2 * SIZE)
            pixels[x, y] = (int(40 + 90 * t), int(50 + 20 * t), int(120 + 80 * t))
    d = ImageDraw.Draw(image)
    d.rounded_rectangle((40, 40, 360, 360), radius=48, outline=(255, 255, 255), width=10)
    for corner in ((40, 40), (360, 40), (40, 360), (360, 360)):  # the frame's "focus" corners
        d.ellipse((corner[0] - 16, corner[1] - 16, corner[0] + 16, corner[1] + 16), fill=(255, 210, 90))
    d.ellipse((140, 90, 260, 220), fill=(255, 230, 205))              # head
    d.pieslice((95, 215, 305, 400), 180, 360, fill=(255, 230, 205))    # shoulders
    d.ellipse((168, 140, 184, 156), fill=(60, 60, 90))
    d.ellipse((216, 140, 232, 156), fill=(60, 60, 90))
    d.arc((175, 160, 225, 200), 20, 160, fill=(200, 90, 90), width=5)
    font = ImageFont.load_default(size=44)
    text = "PuLID SDXL"
    width = d.textlength(text, font=font)
    d.rounded_rectangle(((SIZE - width) / 2 - 14, 300, (SIZE + width) / 2 + 14, 352), radius=12, fill=(20, 24, 60))
    d.text(((SIZE - width) / 2, 302), text, font=font, fill=(255, 255, 255))
    return image


if __name__ == "__main__":
    OUT.parent.mkdir(exist_ok=True)
    draw().save(OUT, optimize=True)
    sys.stdout.write(f"{OUT}\n")
