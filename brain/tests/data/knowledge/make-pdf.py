#!/usr/bin/env python3
"""Writes bicycle-maintenance.pdf: a minimal, valid PDF 1.4 (Helvetica, one page, one text object
per line) made with the standard library only, so the corpus needs no PDF tools. Run it from this
directory to regenerate the committed file byte for byte."""

LINES = [
    "Bicycle maintenance basics",
    "",
    "Check tyre pressure before every ride. Road tyres usually need 80 to 100 psi, mountain bike",
    "tyres 25 to 35 psi; the range is printed on the tyre sidewall. Underinflated tyres pinch",
    "flat on kerbs and wear quickly.",
    "",
    "Clean and lubricate the chain every 150 to 200 kilometres, and after every wet ride. Wipe",
    "the chain with a rag, apply one drop of chain lube to each roller while turning the pedals",
    "backwards, wait five minutes, then wipe off the excess so it does not collect grit.",
    "",
    "Test the brakes before riding: squeezing a lever fully should never bring it to the",
    "handlebar. Replace rim brake pads when the grooves are worn away, and disc brake pads when",
    "less than 1.5 millimetres of pad material remains.",
    "",
    "Northwind service centres offer a free safety check for bikes bought from us during the",
    "first year, and a full tune-up for 79 dollars.",
]


def escape(text):
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def main():
    content = []
    y = 760
    for line in LINES:
        if line:
            content.append(f"BT /F1 11 Tf 56 {y} Td ({escape(line)}) Tj ET")
        y -= 16
    stream = "\n".join(content).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode()
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    with open("bicycle-maintenance.pdf", "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
