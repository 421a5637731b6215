"""SYNTHETIC PDFs for the document tests, written by hand (no dependency): text in Courier.

A real FDA document is typeset again with another page size, font size, line length, running
header and footer, and (optionally) soft hyphens at line ends: the same words re-paginated, as a
re-issued PDF would be. Courier is one of the PDF standard fonts (no embedding) with fixed
widths, so line lengths are counted in characters. Text is encoded in WinAnsi (cp1252); callers
pass text that cp1252 can encode (`encodable`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Courier's advance width, as a share of the font size.
COURIER_WIDTH = 0.6
LETTER = (612.0, 792.0)
A4 = (595.0, 842.0)


@dataclass(frozen=True)
class Layout:
    """How to set the text: page size, font size, margins, furniture, hyphenation."""

    page: tuple[float, float] = LETTER
    font_size: float = 10.0
    margin: float = 72.0
    header: str = "Contains Nonbinding Recommendations"
    footer: str = "Page {n} of {total}"
    leading: float = 1.25
    hyphenate: bool = False

    @property
    def chars_per_line(self) -> int:
        return int((self.page[0] - 2 * self.margin) / (COURIER_WIDTH * self.font_size))

    @property
    def lines_per_page(self) -> int:
        return int((self.page[1] - 2 * self.margin) / (self.font_size * self.leading))


def encodable(text: str) -> str:
    """`text` with what cp1252 cannot encode replaced, so every layout writes the same words."""
    return text.encode("cp1252", "replace").decode("cp1252")


def wrap(paragraph: str, width: int, hyphenate: bool) -> list[str]:
    """Greedy line breaking; with `hyphenate`, a long word is broken with a hyphen at a line end.

    A word longer than a line (a URL, a dot leader) overruns the margin, as typesetters do.
    """
    lines: list[str] = []
    line = ""
    for word in paragraph.split():
        candidate = f"{line} {word}" if line else word
        if len(candidate) <= width:
            line = candidate
            continue
        room = width - len(line) - (2 if line else 0)
        if hyphenate and word.isalpha() and len(word) >= 8 and room >= 4:
            head = word[: min(room, len(word) - 3)]
            lines.append(f"{line} {head}-" if line else f"{head}-")
            line = word[len(head) :]
            continue
        if line:
            lines.append(line)
        line = word
    if line:
        lines.append(line)
    return lines


def typeset(paragraphs: list[str], layout: Layout = Layout(), title: str | None = None) -> bytes:
    """A PDF of `paragraphs` (one blank line between them) set in `layout`."""
    lines: list[str] = []
    for paragraph in paragraphs:
        if lines:
            lines.append("")
        lines.extend(wrap(paragraph, layout.chars_per_line, layout.hyphenate))
    per_page = layout.lines_per_page
    pages = [lines[i : i + per_page] for i in range(0, len(lines), per_page)] or [[]]
    width, height = layout.page
    streams = []
    for number, page_lines in enumerate(pages, 1):
        ops = []
        size = layout.font_size * 0.8
        if layout.header:
            ops.append(_show(layout.margin, height - layout.margin / 2, size, layout.header))
        step = layout.font_size * layout.leading
        y = height - layout.margin - layout.font_size
        for text in page_lines:
            if text:
                ops.append(_show(layout.margin, y, layout.font_size, text))
            y -= step
        if layout.footer:
            footer = layout.footer.format(n=number, total=len(pages))
            ops.append(_show(width / 2 - len(footer) * size * 0.3, layout.margin / 2, size, footer))
        streams.append("\n".join(ops).encode("cp1252"))
    return build(streams, layout.page, title)


def image_only(pages: int = 2, page: tuple[float, float] = LETTER) -> bytes:
    """A PDF whose pages hold only drawn shapes, like a scan: no text layer at all."""
    streams = [
        f"0.{n % 9 + 1} g 72 {200 + 40 * n} 400 300 re f 0 g 100 100 50 50 re f".encode()
        for n in range(pages)
    ]
    return build(streams, page, None)


def _show(x: float, y: float, size: float, text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /F1 {size:g} Tf {x:.2f} {y:.2f} Td ({escaped}) Tj ET"


def build(streams: list[bytes], page: tuple[float, float], title: str | None) -> bytes:
    """The PDF file: catalog, page tree, Courier, one content stream per page, xref, trailer."""
    count = len(streams)
    page_ids = [4 + 2 * i for i in range(count)]
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>",
    }
    for page_id, stream in zip(page_ids, streams, strict=True):
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page[0]:g} {page[1]:g}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>"
        ).encode()
        objects[page_id + 1] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
        )
    info_id = None
    if title is not None:
        info_id = 4 + 2 * count
        escaped = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        objects[info_id] = f"<< /Title ({escaped}) >>".encode("cp1252")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for number in range(1, size):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    info = f" /Info {info_id} 0 R" if info_id else ""
    out += f"trailer\n<< /Size {size} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
