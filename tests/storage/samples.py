"""Real files of every accepted type, made by real encoders (PyAV/FFmpeg, zipfile), in memory.

The sniffer and the upload tests use these rather than hand-typed magic numbers, so they check
what encoders actually write.
"""

from __future__ import annotations

import io
import zipfile
from fractions import Fraction
from functools import cache

import av


def _video(
    fmt: str, codec: str, frames: int = 5, size: int = 32, pix_fmt: str = "yuv420p"
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = pix_fmt
        for i in range(frames):
            frame = av.VideoFrame(size, size, "rgb24")
            frame.planes[0].update(bytes([(i * 40 + x) % 256 for x in range(size * size * 3)]))
            frame.pts = i
            frame.time_base = Fraction(1, 10)
            for packet in stream.encode(frame.reformat(format=pix_fmt)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def _audio(fmt: str, codec: str, rate: int = 48000, layout: str = "mono") -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        samples = stream.codec_context.frame_size or 1024
        sample_fmt = stream.codec_context.format.name
        pts = 0
        for _ in range(20):
            frame = av.AudioFrame(format=sample_fmt, layout=layout, samples=samples)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = rate
            frame.pts = pts
            pts += samples
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def _zip(entries: dict[str, bytes], stored_first: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            kind = zipfile.ZIP_STORED if name == stored_first else zipfile.ZIP_DEFLATED
            z.writestr(name, data, compress_type=kind)
    return buf.getvalue()


_CT = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'


def pdf() -> bytes:
    """A minimal but valid PDF 1.4 with one empty page and a correct xref table."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def _strip_id3(data: bytes) -> bytes:
    """An MP3 as bare MPEG audio frames (many encoders write no ID3 tag)."""
    assert data[:3] == b"ID3"
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return data[10 + size :]


@cache
def sample(kind: str) -> bytes:
    """Bytes of a real file of `kind` (the sniffer's kind names, plus a few variants)."""
    makers = {
        "pdf": pdf,
        "png": lambda: _video("image2pipe", "png", frames=1, pix_fmt="rgb24"),
        "jpeg": lambda: _video("image2pipe", "mjpeg", frames=1, pix_fmt="yuvj420p"),
        "gif": lambda: _video("gif", "gif", frames=2, pix_fmt="rgb8"),
        "webp": lambda: _video("webp", "libwebp", frames=1, pix_fmt="yuv420p"),
        "mp3": lambda: _audio("mp3", "libmp3lame", rate=44100),
        "mp3-frames": lambda: _strip_id3(sample("mp3")),
        "wav": lambda: _audio("wav", "pcm_s16le"),
        "flac": lambda: _audio("flac", "flac"),
        "ogg": lambda: _audio("ogg", "libopus"),
        "webm": lambda: _video("webm", "libvpx"),
        "matroska": lambda: _video("matroska", "mpeg4"),
        "mp4": lambda: _video("mp4", "mpeg4"),
        "m4a": lambda: _audio("ipod", "aac"),
        "mov": lambda: _video("mov", "mpeg4"),
        "docx": lambda: _zip(
            {
                "[Content_Types].xml": _CT,
                "_rels/.rels": b"<Relationships/>",
                "word/document.xml": b"<w:document/>",
            }
        ),
        "xlsx": lambda: _zip({"[Content_Types].xml": _CT, "xl/workbook.xml": b"<workbook/>"}),
        "pptx": lambda: _zip({"[Content_Types].xml": _CT, "ppt/presentation.xml": b"<p/>"}),
        "docm": lambda: _zip(
            {
                "[Content_Types].xml": _CT,
                "word/document.xml": b"<w:document/>",
                "word/vbaProject.bin": b"\xd0\xcf\x11\xe0macro",
            }
        ),
        "odt": lambda: _zip(
            {
                "mimetype": b"application/vnd.oasis.opendocument.text",
                "content.xml": b"<office:document-content/>",
            },
            stored_first="mimetype",
        ),
        "zip": lambda: _zip({"notes/a.txt": b"hello", "notes/b.txt": b"world"}),
        "text": lambda: "Meeting notes — 会议纪要\n- item one\n- item two\n".encode(),
        "csv": lambda: b"name,score\nalice,3\nbob,5\n",
        "html": lambda: b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "xml": lambda: b'<?xml version="1.0"?><note>hi</note>',
        "elf": lambda: b"\x7fELF\x02\x01\x01" + bytes(200),
        "binary": lambda: bytes(range(256)) * 4,
        "latin1": lambda: "café naïve résumé\n".encode("latin-1"),
    }
    return makers[kind]()
