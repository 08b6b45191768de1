"""What an uploaded file really is, judged by its bytes rather than its name.

Uploads are only accepted when the content matches a type on a short allowlist *and* the
file name's extension (if any) belongs to that type: a renamed executable, an HTML page called
`notes.txt` or a PNG called `report.pdf` are all refused. Downloads are then served with the
allowlist's Content-Type, never with what the client claimed, so a browser can never be talked
into rendering an upload as a page or a script.

The sniffer is incremental: it sees the stream once, keeps the first `HEAD` bytes (magic
numbers), the last `TAIL` bytes (a ZIP's central directory, to tell a .docx from a plain .zip)
and validates UTF-8 text on the fly, so memory stays bounded whatever the upload size.
"""

from __future__ import annotations

import codecs
import re
import struct
import unicodedata
from dataclasses import dataclass

HEAD = 8 * 1024
TAIL = 256 * 1024

CATEGORIES = ("document", "image", "audio", "video", "other")


@dataclass(frozen=True, slots=True)
class Detected:
    kind: str  # e.g. "pdf", "docx", "text"
    content_type: str  # what downloads are served as
    category: str  # one of CATEGORIES
    extension: str  # the extension the stored name ends with, without the dot


class UnsupportedContent(Exception):
    """The content is not on the allowlist, or the name's extension lies about it."""


# kind -> {extension: (content type, category)}; the first extension is the canonical one.
KINDS: dict[str, dict[str, tuple[str, str]]] = {
    "pdf": {"pdf": ("application/pdf", "document")},
    "png": {"png": ("image/png", "image")},
    "jpeg": {ext: ("image/jpeg", "image") for ext in ("jpg", "jpeg", "jpe", "jfif")},
    "gif": {"gif": ("image/gif", "image")},
    "webp": {"webp": ("image/webp", "image")},
    "mp3": {"mp3": ("audio/mpeg", "audio")},
    "wav": {"wav": ("audio/wav", "audio")},
    "flac": {"flac": ("audio/flac", "audio")},
    "ogg": {
        "ogg": ("audio/ogg", "audio"),
        "oga": ("audio/ogg", "audio"),
        "opus": ("audio/ogg", "audio"),
        "ogv": ("video/ogg", "video"),
    },
    "webm": {"webm": ("video/webm", "video"), "weba": ("audio/webm", "audio")},
    "matroska": {"mkv": ("video/x-matroska", "video"), "mka": ("audio/x-matroska", "audio")},
    "mp4": {
        "mp4": ("video/mp4", "video"),
        "m4v": ("video/mp4", "video"),
        "m4a": ("audio/mp4", "audio"),
        "mov": ("video/quicktime", "video"),
    },
    "docx": {
        "docx": (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "document",
        )
    },
    "xlsx": {
        "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "document")
    },
    "pptx": {
        "pptx": (
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "document",
        )
    },
    "odt": {"odt": ("application/vnd.oasis.opendocument.text", "document")},
    "ods": {"ods": ("application/vnd.oasis.opendocument.spreadsheet", "document")},
    "odp": {"odp": ("application/vnd.oasis.opendocument.presentation", "document")},
    "zip": {"zip": ("application/zip", "other")},
    "text": {
        "txt": ("text/plain; charset=utf-8", "document"),
        "md": ("text/markdown; charset=utf-8", "document"),
        "markdown": ("text/markdown; charset=utf-8", "document"),
        "csv": ("text/csv; charset=utf-8", "document"),
        "tsv": ("text/tab-separated-values; charset=utf-8", "document"),
        "json": ("application/json", "document"),
        "log": ("text/plain; charset=utf-8", "document"),
        "srt": ("text/plain; charset=utf-8", "document"),
        "vtt": ("text/vtt; charset=utf-8", "document"),
    },
}

_ODF = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
}
_OOXML_PARTS = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}
# HEIF/AVIF images share MP4's container; they are not on the allowlist.
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}
# The tags a browser's sniffer treats as HTML (WHATWG MIME Sniffing 7.1), plus XML and SVG.
_MARKUP = re.compile(
    rb"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p"
    rb"|svg|math|object|embed|\?xml)[\s/>]|<!--",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def sniff_head(head: bytes) -> str | None:
    """Name the binary kind announced by the first bytes, "zip" for any ZIP, or None."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        doc = head[:64]
        return "webm" if b"webm" in doc else "matroska" if b"matroska" in doc else None
    if head[4:8] == b"ftyp":
        return None if head[8:12] in _IMAGE_BRANDS else "mp4"
    if head.startswith(b"ID3") or _is_mpeg_audio_frame(head):
        return "mp3"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return None


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2 layer I-III frame header (an MP3 without ID3 tag)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def zip_kind(head: bytes, tail: bytes) -> str:
    """Tell OpenDocument and Office Open XML files from plain ZIP archives."""
    if head[30:38] == b"mimetype":  # ODF stores its type first, uncompressed
        for mime, kind in _ODF.items():
            if head[38 : 38 + len(mime)] == mime:
                return kind
    names = zip_names(tail)
    if names is None or "[Content_Types].xml" not in names:
        return "zip"
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise UnsupportedContent("Macro-enabled Office documents are not accepted")
    for prefix, kind in _OOXML_PARTS.items():
        if any(name.startswith(prefix) for name in names):
            return kind
    return "zip"


def zip_names(tail: bytes) -> list[str] | None:
    """Entry names from the central directory at the end of a ZIP, when it fits in `tail`."""
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        return None
    n_entries, cd_size, cd_offset = struct.unpack_from("<HII", tail, end + 10)
    if cd_offset == 0xFFFFFFFF or n_entries == 0xFFFF:  # ZIP64: rare for documents
        return None
    start = end - cd_size  # trust the directory's position, not its offset (prepended data)
    if start < 0:
        return None
    names: list[str] = []
    pos = start
    for _ in range(n_entries):
        if tail[pos : pos + 4] != b"PK\x01\x02" or pos + 46 > end:
            return None
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", tail, pos + 28)
        names.append(tail[pos + 46 : pos + 46 + name_len].decode("utf-8", "replace"))
        pos += 46 + name_len + extra_len + comment_len
    return names


MAX_NAME_LENGTH = 150
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_RESERVED = re.compile(r'[<>:"|?*]')


def clean_file_name(raw: str, fallback: str = "file") -> str:
    """A display name: no directories, no control or bidi characters, bounded length.

    The name is only ever shown and offered back in Content-Disposition; storage keys never
    derive from it. Right-to-left overrides are dropped because they fake extensions
    ("invoice\u202egpj.exe" shows as "invoiceexe.jpg").
    """
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROP_CATEGORIES)
    name = _RESERVED.sub("_", " ".join(name.split())).strip(" .")
    if not name:
        return fallback
    if len(name) > MAX_NAME_LENGTH:
        ext = extension_of(name)
        keep = MAX_NAME_LENGTH - (len(ext) + 1 if ext else 0)
        name = name[:keep].rstrip(" .") + (f".{ext}" if ext else "")
    return name


def extension_of(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem and ext and len(ext) <= 10 else ""


class ContentSniffer:
    """Feed it the upload chunk by chunk, then ask `verdict(file_name)`."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.size = 0
        self._binary: str | None = None
        self._head_judged = False
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._text_ok = True

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if len(self.head) < HEAD:
            self.head += chunk[: HEAD - len(self.head)]
        if self._binary == "zip" or not self._head_judged:
            self.tail += chunk
            if len(self.tail) > TAIL:
                del self.tail[: len(self.tail) - TAIL]
        if not self._head_judged and len(self.head) >= HEAD:
            self._judge_head()
        if self._text_ok and self._binary is None:
            self._check_text(chunk, final=False)

    @property
    def head_complete(self) -> bool:
        return self._head_judged

    def _judge_head(self) -> None:
        self._head_judged = True
        self._binary = sniff_head(bytes(self.head))
        if self._binary is not None:
            self._text_ok = False
        if self._binary != "zip":
            self.tail.clear()

    def _check_text(self, chunk: bytes, *, final: bool) -> None:
        try:
            text = self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            self._text_ok = False
            return
        if _CONTROL.search(text):
            self._text_ok = False

    def precheck(self, file_name: str) -> None:
        """Refuse early, once the head is known, what can never pass (saves reading the rest)."""
        if not self._head_judged:
            return
        ext = extension_of(file_name)
        kind = self._binary
        if kind is None and not self._text_ok:
            raise UnsupportedContent("The file's content is not of an accepted type")
        if kind not in (None, "zip") and ext and ext not in KINDS[kind]:
            raise UnsupportedContent(f"The file's content is {kind}, not .{ext}")

    def verdict(self, file_name: str) -> Detected:
        if not self._head_judged:
            self._judge_head()
        kind = self._binary
        if kind is None:
            if self._text_ok:
                self._check_text(b"", final=True)
            if not self._text_ok:
                raise UnsupportedContent("The file's content is not of an accepted type")
            start = bytes(self.head[:1024]).removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0c")
            if _MARKUP.match(start):
                raise UnsupportedContent("HTML, SVG and XML documents are not accepted")
            kind = "text"
        elif kind == "zip":
            kind = zip_kind(bytes(self.head), bytes(self.tail))
        types = KINDS[kind]
        ext = extension_of(file_name)
        if not ext:
            ext = next(iter(types))
        elif ext not in types:
            raise UnsupportedContent(
                f"The file's content is {kind}, which does not match its .{ext} extension"
            )
        content_type, category = types[ext]
        return Detected(kind, content_type, category, ext)
