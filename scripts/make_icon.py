"""Draw smtp_invoicing/static/description/icon.png (an envelope with a check mark) with Pillow."""

import os

from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE, SCALE = 256, 4  # drawn 4x larger, then downsampled for smooth edges


def draw():
    s = SIZE * SCALE
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle((0, 0, s - 1, s - 1), radius=48 * SCALE, fill=(1, 126, 132, 255))  # Odoo teal
    left, top, right, bottom = 40 * SCALE, 70 * SCALE, 216 * SCALE, 190 * SCALE
    pen.rounded_rectangle((left, top, right, bottom), radius=12 * SCALE, fill=(255, 255, 255, 255))
    middle = (left + right) // 2
    pen.line(
        [(left + 6 * SCALE, top + 6 * SCALE), (middle, top + 64 * SCALE), (right - 6 * SCALE, top + 6 * SCALE)],
        fill=(1, 126, 132, 255),
        width=9 * SCALE,
        joint="curve",
    )
    cx, cy, r = 190 * SCALE, 184 * SCALE, 44 * SCALE
    pen.ellipse(
        (cx - r, cy - r, cx + r, cy + r), fill=(113, 75, 103, 255), outline=(255, 255, 255, 255), width=7 * SCALE
    )
    pen.line(
        [(cx - 20 * SCALE, cy + 2 * SCALE), (cx - 5 * SCALE, cy + 17 * SCALE), (cx + 22 * SCALE, cy - 14 * SCALE)],
        fill=(255, 255, 255, 255),
        width=10 * SCALE,
        joint="curve",
    )
    return image.resize((SIZE, SIZE), Image.LANCZOS)


if __name__ == "__main__":
    path = os.path.join(ROOT, "smtp_invoicing", "static", "description", "icon.png")
    draw().save(path, optimize=True)
    print(path)
