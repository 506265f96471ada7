"""Files sktriplet writes (sktriplet._files): replaced whole or not at all,
through links, never over a device or pipe, checked before any work.  Every
file lives in the test's own folder."""

import errno
import os
import stat
import threading

import pytest

from sktriplet._files import check_output_path, replacing, writing


def test_a_new_file_is_written_whole_with_the_umask_applied(tmp_path):
    target = tmp_path / "m.bin"
    old = os.umask(0o027)
    try:
        with replacing(target) as f:
            f.write(b"model")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"model"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["m.bin"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_stray_one(tmp_path, error):
    target = tmp_path / "m.txt"
    target.write_text("kept")
    with pytest.raises(type(error)):
        with replacing(target, "w") as f:
            f.write("half")
            raise error
    assert target.read_text() == "kept"
    assert os.listdir(tmp_path) == ["m.txt"]


def test_a_replaced_file_keeps_its_permission_bits_and_text_mode_args(tmp_path):
    target = tmp_path / "e.csv"
    target.write_text("old")
    target.chmod(0o600)
    with replacing(target, "w", newline="") as f:
        f.write("a\r\nb")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b"a\r\nb"


def test_the_file_is_synced_before_the_rename_and_the_folder_after(
    tmp_path, monkeypatch
):
    import sktriplet._files as files

    events, fsync, rename = [], os.fsync, os.replace

    def spy_fsync(fd):
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        fsync(fd)

    def spy_replace(a, b):
        events.append("rename")
        rename(a, b)

    monkeypatch.setattr(files.os, "fsync", spy_fsync)
    monkeypatch.setattr(files.os, "replace", spy_replace)
    with replacing(tmp_path / "m.bin") as f:
        f.write(b"x")
    assert events == ["fsync file", "rename", "fsync folder"]


def test_a_link_keeps_pointing_to_the_file_it_names(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "m.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with replacing(link) as f:
        f.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path / "real")) == ["m.bin"]


def test_a_pipe_is_written_through_and_stays_a_pipe(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    with replacing(fifo) as f:
        f.write(b"through")
    reader.join(timeout=10)
    assert got == [b"through"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe"]


def test_writing_takes_an_open_file_as_it_is_and_leaves_it_open(tmp_path):
    with open(tmp_path / "out.bin", "wb") as out:
        with writing(out) as f:
            f.write(b"a")
        assert not out.closed
        out.write(b"b")
    assert (tmp_path / "out.bin").read_bytes() == b"ab"
    with writing(tmp_path / "p.txt", "w") as f:
        f.write("path")
    assert (tmp_path / "p.txt").read_text() == "path"


def _raised(path):
    with pytest.raises(OSError) as raised:
        check_output_path(path)
    e = raised.value
    return type(e), e.errno, e.strerror, e.filename


def test_output_paths_that_cannot_be_written_are_refused_before_work(
    tmp_path, monkeypatch
):
    import sktriplet._files as files

    assert _raised(tmp_path) == (
        IsADirectoryError, errno.EISDIR, "is a folder, not a file", str(tmp_path)
    )  # fmt: skip
    missing = tmp_path / "no" / "m.bin"
    assert _raised(missing) == (
        FileNotFoundError, errno.ENOENT, "no such folder", str(tmp_path / "no")
    )  # fmt: skip
    dangling = tmp_path / "link.bin"
    dangling.symlink_to(missing)  # a link into a folder that does not exist
    assert _raised(dangling)[2:] == ("no such folder", str(tmp_path / "no"))
    check_output_path(tmp_path / "fine.bin")  # nothing raised
    # Permissions (root passes every os.access check: it is stood in for).
    asked = []

    def access(path, mode):
        asked.append(mode)
        return False

    monkeypatch.setattr(files.os, "access", access)
    assert _raised(tmp_path / "m.bin") == (
        PermissionError, errno.EACCES, "cannot write into the folder", str(tmp_path)
    )  # fmt: skip
    assert asked == [os.W_OK | os.X_OK]
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert _raised(fifo) == (PermissionError, errno.EACCES, "cannot write", str(fifo))
    assert asked[-1] == os.W_OK


def test_a_writable_pipe_passes_the_check(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    check_output_path(fifo)


def test_writing_a_path_writes_bytes_by_default_and_passes_open_args(tmp_path):
    with writing(tmp_path / "b.bin") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with writing(tmp_path / "t.csv", "w", newline="") as f:
        f.write("a\r\n")
    assert (tmp_path / "t.csv").read_bytes() == b"a\r\n"


def test_writing_passes_the_encoding_on(tmp_path):
    with writing(tmp_path / "l.txt", "w", encoding="latin-1") as f:
        f.write("é")
    assert (tmp_path / "l.txt").read_bytes() == b"\xe9"
