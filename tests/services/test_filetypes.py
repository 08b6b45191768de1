"""The content sniffer: real files are recognised by their bytes, names that lie are refused."""

from __future__ import annotations

import pytest

from confer.services.filetypes import (
    HEAD,
    ContentSniffer,
    Detected,
    UnsupportedContent,
    clean_file_name,
    zip_names,
)
from tests.storage.samples import sample


def sniff(data: bytes, name: str, chunk: int = 4096) -> Detected:
    sniffer = ContentSniffer()
    for i in range(0, len(data), chunk):
        sniffer.feed(data[i : i + chunk])
    return sniffer.verdict(name)


@pytest.mark.parametrize(
    ("kind", "name", "content_type", "category"),
    [
        ("pdf", "report.pdf", "application/pdf", "document"),
        ("png", "shot.png", "image/png", "image"),
        ("jpeg", "photo.JPG", "image/jpeg", "image"),
        ("jpeg", "photo.jpeg", "image/jpeg", "image"),
        ("gif", "anim.gif", "image/gif", "image"),
        ("webp", "pic.webp", "image/webp", "image"),
        ("mp3", "song.mp3", "audio/mpeg", "audio"),
        ("mp3-frames", "song.mp3", "audio/mpeg", "audio"),
        ("wav", "voice.wav", "audio/wav", "audio"),
        ("flac", "track.flac", "audio/flac", "audio"),
        ("ogg", "voice.ogg", "audio/ogg", "audio"),
        ("ogg", "voice.opus", "audio/ogg", "audio"),
        ("webm", "clip.webm", "video/webm", "video"),
        ("matroska", "clip.mkv", "video/x-matroska", "video"),
        ("mp4", "clip.mp4", "video/mp4", "video"),
        ("m4a", "talk.m4a", "audio/mp4", "audio"),
        ("mov", "clip.mov", "video/quicktime", "video"),
        (
            "docx",
            "plan.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "document",
        ),
        (
            "xlsx",
            "sheet.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "document",
        ),
        (
            "pptx",
            "deck.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "document",
        ),
        ("odt", "letter.odt", "application/vnd.oasis.opendocument.text", "document"),
        ("zip", "bundle.zip", "application/zip", "other"),
        ("text", "notes.txt", "text/plain; charset=utf-8", "document"),
        ("text", "notes.md", "text/markdown; charset=utf-8", "document"),
        ("csv", "scores.csv", "text/csv; charset=utf-8", "document"),
    ],
)
def test_real_files_are_recognised(kind: str, name: str, content_type: str, category: str) -> None:
    detected = sniff(sample(kind), name)
    assert (detected.content_type, detected.category) == (content_type, category)
    assert detected.extension == name.rpartition(".")[2].lower()


@pytest.mark.parametrize("chunk", [1, 7, 100, HEAD, HEAD + 1, 1 << 20])
def test_verdict_does_not_depend_on_how_the_stream_is_cut(chunk: int) -> None:
    for kind, name in [("docx", "a.docx"), ("text", "a.txt"), ("png", "a.png"), ("odt", "a.odt")]:
        assert sniff(sample(kind), name, chunk) == sniff(sample(kind), name)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("png", "report.pdf"),  # an image dressed as a document
        ("pdf", "photo.png"),
        ("text", "photo.png"),
        ("text", "report.pdf"),
        ("zip", "plan.docx"),  # a plain archive is not a Word document
        ("docx", "bundle.zip"),
        ("mp4", "song.mp3"),
        ("html", "page.txt"),  # HTML content under a harmless name
        ("svg", "drawing.txt"),
        ("xml", "data.txt"),
    ],
)
def test_an_extension_that_lies_about_the_content_is_refused(kind: str, name: str) -> None:
    with pytest.raises(UnsupportedContent):
        sniff(sample(kind), name)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("html", "page.html"),
        ("svg", "drawing.svg"),
        ("html", "page"),
        ("svg", "drawing"),
        ("elf", "tool"),
        ("elf", "tool.exe"),
        ("binary", "blob.bin"),
        ("latin1", "notes.txt"),  # text, but not UTF-8
        ("docm", "macro.docx"),  # a Word file carrying macros
        ("text", "script.sh"),  # text, but not an accepted text extension
        ("text", "page.html"),
    ],
)
def test_content_not_on_the_allowlist_is_refused(kind: str, name: str) -> None:
    with pytest.raises(UnsupportedContent):
        sniff(sample(kind), name)


def test_text_with_control_characters_is_not_text() -> None:
    with pytest.raises(UnsupportedContent):
        sniff(b"hello\x00world\n", "a.txt")
    with pytest.raises(UnsupportedContent):
        sniff(b"ok\x1b[31mred\n", "a.txt")


def test_markup_later_in_a_text_file_is_fine_since_it_is_served_as_text() -> None:
    assert sniff(b"Use <b>bold</b> like this\n", "a.md").kind == "text"


def test_a_name_without_extension_takes_the_content_s_canonical_one() -> None:
    assert sniff(sample("png"), "blob").extension == "png"
    assert sniff(sample("jpeg"), "photo").extension == "jpg"
    assert sniff(sample("text"), "passwd").extension == "txt"


def test_precheck_refuses_a_wrong_binary_as_soon_as_the_head_is_known() -> None:
    sniffer = ContentSniffer()
    sniffer.feed(sample("elf") + bytes(HEAD))
    assert sniffer.head_complete
    with pytest.raises(UnsupportedContent):
        sniffer.precheck("tool.exe")
    sniffer = ContentSniffer()
    sniffer.feed(sample("wav")[:HEAD])
    with pytest.raises(UnsupportedContent):
        sniffer.precheck("voice.mp3")
    sniffer.precheck("voice.wav")  # no error: could still be fine


def test_zip_central_directory_is_read_from_the_tail_only() -> None:
    names = zip_names(sample("docx"))
    assert names == ["[Content_Types].xml", "_rels/.rels", "word/document.xml"]
    # With data in front (as in a streamed tail window) the directory is still found.
    assert zip_names(b"x" * 1000 + sample("docx")) == names
    assert zip_names(b"not a zip") is None
    assert zip_names(sample("docx")[:-30]) is None  # truncated end record


def test_a_large_archive_keeps_memory_bounded() -> None:
    sniffer = ContentSniffer()
    docx = sample("docx")
    filler = bytes(3 * 1024 * 1024)
    # A ZIP whose first entry is huge: only head and tail are kept.
    sniffer.feed(docx[:30])
    for i in range(0, len(filler), 65536):
        sniffer.feed(filler[i : i + 65536])
    assert len(sniffer.head) <= HEAD and len(sniffer.tail) <= 256 * 1024


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("/absolute/path/x.png", "x.png"),
        (".htaccess", "htaccess"),
        ("..", "file"),
        ("", "file"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # right-to-left override dropped
        ("a\x00b\x1fc\n.txt", "abc.txt"),
        ("  spaced   out  .pdf  ", "spaced out .pdf"),
        ('what<>:"|?*.txt', "what_______.txt"),
        ("会议纪要.docx", "会议纪要.docx"),
    ],
)
def test_file_names_are_cleaned_for_display(raw: str, clean: str) -> None:
    assert clean_file_name(raw) == clean


def test_long_names_are_shortened_keeping_the_extension() -> None:
    name = clean_file_name("x" * 500 + ".pdf")
    assert len(name) == 150 and name.endswith(".pdf")
