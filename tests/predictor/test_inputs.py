"""Files, folders and globs become one ordered list of files, each named once."""

from __future__ import annotations

from predictor.inputs import Entry, expand


def test_files_folders_and_globs(tmp_path, monkeypatch):
    for name in [
        "scans/b.png",
        "scans/a.JPG",
        "scans/deep/c.webp",
        "scans/deep/d.HEIC",
        "scans/deep/e.avif",
        "scans/.cache/x.png",
        "scans/notes.txt",
        "photos/p1.jpg",
        "photos/p2.jpg",
        "photos/p3.gif",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    entries = expand(
        [
            "photos/p2.jpg",
            "scans",
            "photos/*.jpg",
            "scans/b.png",
            "**/*.gif",
            "notes.txt",
            "nothing-*.png",
            "photos/[x]*",
        ]
    )
    assert entries == [
        Entry("photos/p2.jpg"),
        Entry("scans/a.JPG"),
        Entry("scans/b.png"),
        Entry("scans/deep/c.webp"),
        Entry("scans/deep/d.HEIC"),
        Entry("scans/deep/e.avif"),
        Entry("photos/p1.jpg"),
        Entry("photos/p3.gif"),
        Entry("notes.txt"),
        Entry("nothing-*.png", "no files match this pattern"),
        Entry("photos/[x]*", "no files match this pattern"),
    ]


def test_a_named_file_is_taken_whatever_its_name(tmp_path):
    odd = tmp_path / "scan[1]*.txt"
    odd.write_bytes(b"")
    assert expand([str(odd)]) == [Entry(str(odd))]


def test_a_glob_matching_folders_walks_them(tmp_path):
    for name in ["day1/a.png", "day2/b.png", "day2/c.bmp"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [e.path for e in expand([str(tmp_path / "day*")])] == [
        str(tmp_path / "day1" / "a.png"),
        str(tmp_path / "day2" / "b.png"),
        str(tmp_path / "day2" / "c.bmp"),
    ]
