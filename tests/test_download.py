"""Downloads and archives against a real HTTP server on 127.0.0.1: good, corrupt, missing, slow and
dropped files, resume with Range; crafted hostile archives; datasets by name through the CLI."""
from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from i2i.data.archives import extract
from i2i.download import fetch
from i2i.errors import I2IError


class Server:
    """Serves `files` (URL path -> bytes) with HTTP Range support. Paths in `drop_once` stop after
    half of their first answer; paths in `slow` send half, then stall; `ignore_range` answers 200
    to a Range request. `requests` records (path, Range header) of every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.drop_once: set[str] = set()
        self.slow: set[str] = set()
        self.ignore_range: set[str] = set()
        self.release = threading.Event()
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path, wanted = self.path, self.headers.get("Range")
                state.requests.append((path, wanted))
                if path not in state.files:
                    self.send_error(404)
                    return
                data, start = state.files[path], 0
                if wanted and path not in state.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if path in state.drop_once or path in state.slow:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if path in state.slow:
                        state.release.wait(10)
                    state.drop_once.discard(path)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    serving = Server()
    yield serving
    serving.stop()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PAYLOAD = bytes(range(256)) * 4000  # 1 MB, not compressible to nothing


# --------------------------------------------------------------------------- fetch


def test_good_file_verified_and_moved_into_place(tmp_path, server):
    server.files["/m.bin"] = PAYLOAD
    target = tmp_path / "cache" / "m.bin"
    assert fetch(server.url("/m.bin"), target, sha256=sha(PAYLOAD), progress=False) == sha(PAYLOAD)
    assert target.read_bytes() == PAYLOAD
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.bin"]


def test_corrupt_file_is_refused_and_not_kept(tmp_path, server):
    server.files["/m.bin"] = PAYLOAD[:-1] + b"x"
    target = tmp_path / "m.bin"
    with pytest.raises(I2IError, match=r"is corrupt: sha256 .* expected .* from the registry; nothing was kept"):
        fetch(server.url("/m.bin"), target, sha256=sha(PAYLOAD), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_404_is_one_line(tmp_path, server):
    with pytest.raises(I2IError) as caught:
        fetch(server.url("/gone.bin"), tmp_path / "gone.bin", progress=False, label="gone")
    assert "\n" not in str(caught.value)
    assert f"cannot download gone: {server.url('/gone.bin')} answered 404" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no empty .partial left behind: nothing to resume


def test_slow_server_times_out_with_one_line_and_keeps_the_part(tmp_path, server):
    server.files["/slow.bin"] = PAYLOAD
    server.slow.add("/slow.bin")
    began = time.monotonic()
    with pytest.raises(I2IError, match=r"stopped sending for 0.5 s \(.* of .* here; run again to resume\)"):
        fetch(server.url("/slow.bin"), tmp_path / "slow.bin", timeout=0.5, progress=False)
    assert time.monotonic() - began < 5
    assert (tmp_path / "slow.bin.partial").stat().st_size == len(PAYLOAD) // 2
    assert not (tmp_path / "slow.bin").exists()


def test_no_server_is_one_line(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(I2IError, match=r"cannot download x.bin from .*: .*\(no network\?"):
        fetch(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", timeout=2, progress=False)


def test_dropped_connection_resumes_with_range(tmp_path, server):
    server.files["/big.bin"] = PAYLOAD
    server.drop_once.add("/big.bin")
    target = tmp_path / "big.bin"
    with pytest.raises(I2IError, match="connection closed after .* run again to resume"):
        fetch(server.url("/big.bin"), target, sha256=sha(PAYLOAD), progress=False)
    half = len(PAYLOAD) // 2
    assert (tmp_path / "big.bin.partial").stat().st_size == half and not target.exists()
    assert fetch(server.url("/big.bin"), target, sha256=sha(PAYLOAD), progress=False) == sha(PAYLOAD)
    assert server.requests[-1] == ("/big.bin", f"bytes={half}-")  # asked for the rest only
    assert target.read_bytes() == PAYLOAD and not (tmp_path / "big.bin.partial").exists()


def test_server_ignoring_range_restarts_from_zero(tmp_path, server):
    server.files["/m.bin"] = PAYLOAD
    server.ignore_range.add("/m.bin")
    (tmp_path / "m.bin.partial").write_bytes(b"stale bytes of another file")
    assert fetch(server.url("/m.bin"), tmp_path / "m.bin", sha256=sha(PAYLOAD), progress=False) == sha(PAYLOAD)
    assert server.requests[-1][1] == "bytes=27-"


def test_complete_partial_file_is_fetched_again(tmp_path, server):
    """A .partial as long as the file (killed before the rename): 416, start afresh, verify."""
    server.files["/m.bin"] = PAYLOAD
    (tmp_path / "m.bin.partial").write_bytes(PAYLOAD)
    assert fetch(server.url("/m.bin"), tmp_path / "m.bin", sha256=sha(PAYLOAD), progress=False) == sha(PAYLOAD)
    assert [r[1] for r in server.requests] == [f"bytes={len(PAYLOAD)}-", None]


def test_sha256_prefix_of_basicsr_names_is_checked(tmp_path, server):
    server.files["/net-abcdef12.pth"] = PAYLOAD
    with pytest.raises(I2IError, match=r"expected abcdef12\.\.\. \(the prefix in its file name\)"):
        fetch(server.url("/net-abcdef12.pth"), tmp_path / "a.pth", sha256_prefix="abcdef12", progress=False)
    assert fetch(server.url("/net-abcdef12.pth"), tmp_path / "b.pth", sha256_prefix=sha(PAYLOAD)[:8],
                 progress=False) == sha(PAYLOAD)


def test_mirror_serves_the_same_path(tmp_path, server, monkeypatch):
    server.files["/models/x.bin"] = PAYLOAD
    monkeypatch.setenv("I2I_MIRROR", server.base + "/")
    fetch("http://example.invalid/models/x.bin", tmp_path / "x.bin", sha256=sha(PAYLOAD), progress=False)
    assert server.requests == [("/models/x.bin", None)]


# --------------------------------------------------------------------------- archives


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


HOSTILE = {
    "tar with ../": (tar_bytes([("d/a.png", b"x"), ("d/../../evil.txt", b"x")]), "leaves the folder"),
    "tar with an absolute path": (tar_bytes([("/tmp/evil-i2i.txt", b"x")]), "has an absolute path"),
    "tar with a symlink outside": (tar_bytes([link("d/l", "../../../etc/passwd")]), "unsafe"),
    "tar with a symlink out of root": (tar_bytes([("e/x", b"x"), link("d/l", "../e/x")]), "links outside"),
    "tar with a hard link outside": (tar_bytes([link("d/h", "/etc/passwd", tarfile.LNKTYPE)]), "unsafe"),
    "tar with a device": (tar_bytes([link("d/dev", "", tarfile.CHRTYPE)]), "unsafe"),
    "zip with ../": (zip_bytes([("d/a.png", b"x"), ("d/../../evil.txt", b"x")]), "leaves the folder"),
    "zip with an absolute path": (zip_bytes([("/tmp/evil-i2i.txt", b"x")]), "has an absolute path"),
    "zip bomb": (zip_bytes([("d/zeros.png", bytes(20 << 20))]), "more than"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_and_write_nothing(tmp_path, case):
    data, why = HOSTILE[case]
    archive = tmp_path / "in" / ("a.zip" if case.startswith("zip") else "a.tar.gz")
    archive.parent.mkdir()
    archive.write_bytes(data)
    out = tmp_path / "out"
    with pytest.raises(I2IError) as caught:
        extract(archive, out / "d", root="d")
    assert why in str(caught.value) and "\n" not in str(caught.value)
    assert not out.exists() or list(out.iterdir()) == []  # no target, no temp folder left
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == [archive]
    assert not Path("/tmp/evil-i2i.txt").exists()


def test_too_many_members_refused(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(tar_bytes([(f"d/{i}.png", b"x") for i in range(20)], mode="w"))
    with pytest.raises(I2IError, match="more than 10 members"):
        extract(archive, tmp_path / "out", root="d", max_members=10)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_good_archive_extracts_its_root_atomically(tmp_path, kind):
    members = [("h2z/trainA/a.png", png()), ("h2z/trainB/b.png", png()), ("other/x.txt", b"not taken")]
    archive = tmp_path / f"a.{kind}"
    archive.write_bytes(zip_bytes(members) if kind == "zip" else tar_bytes(members))
    out = extract(archive, tmp_path / "data" / "horse2zebra", root="h2z")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["trainA", "trainA/a.png", "trainB",
                                                                            "trainB/b.png"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["horse2zebra"]
    with pytest.raises(I2IError, match="already exists"):
        extract(archive, out, root="h2z")


def test_missing_root_is_one_line(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes([("x/a.png", png())]))
    with pytest.raises(I2IError, match=r"no folder h2z/ in the archive \(its top level: x\)"):
        extract(archive, tmp_path / "out", root="h2z")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- datasets by name


@pytest.fixture()
def i2i_home(tmp_path, monkeypatch, server):
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("I2I_MIRROR", server.base)
    return tmp_path / "home"


def download(name: str):
    from i2i.cli import main

    return CliRunner().invoke(main, ["data", "download", name])


def test_cyclegan_and_pix2pix_datasets_by_name(i2i_home, server):
    server.files["/cyclegan/datasets/horse2zebra.zip"] = zip_bytes(
        [(f"horse2zebra/{side}/{i}.png", png()) for side in ("trainA", "trainB", "testA", "testB") for i in range(2)])
    server.files["/pix2pix/datasets/facades.tar.gz"] = tar_bytes(
        [(f"facades/{split}/{i}.png", png()) for split in ("train", "val") for i in range(2)])
    result = download("horse2zebra")
    assert result.exit_code == 0, result.output
    folder = i2i_home / "datasets" / "horse2zebra"
    assert result.stdout.strip() == f"{folder} (testA/ testB/ trainA/ trainB/)"
    from i2i.data.datasets import detect_layout

    assert detect_layout(folder) == "unpaired" and len(list((folder / "trainA").iterdir())) == 2
    result = download("facades-pix2pix")
    assert result.exit_code == 0, result.output
    assert detect_layout(i2i_home / "datasets" / "facades-pix2pix") == "paired_ab"
    assert sorted(p.name for p in (i2i_home / "downloads").iterdir()) == ["facades.tar.gz.json", "horse2zebra.zip.json"]
    server.stop()  # there already: no network needed
    assert download("horse2zebra").exit_code == 0


def test_dataset_hash_pinned_at_first_download(i2i_home, server):
    server.files["/cyclegan/datasets/apple2orange.zip"] = zip_bytes([("apple2orange/trainA/a.png", png())])
    assert download("apple2orange").exit_code == 0
    import shutil

    shutil.rmtree(i2i_home / "datasets" / "apple2orange")
    server.files["/cyclegan/datasets/apple2orange.zip"] = zip_bytes([("apple2orange/trainA/b.png", png())])
    result = download("apple2orange")
    assert result.exit_code == 1 and "corrupt" in result.output and "first download" in result.output
    assert not (i2i_home / "datasets" / "apple2orange").exists()


def test_a_bad_first_download_is_neither_pinned_nor_kept(i2i_home, server):
    """A mirror's error page (or a cut-short archive) at the first download: one line, the file
    deleted and no hash recorded, so the next run, once the server is right, just works."""
    url = "/cyclegan/datasets/ukiyoe2photo.zip"
    good = zip_bytes([("ukiyoe2photo/trainA/a.png", png()), ("ukiyoe2photo/trainB/b.png", png())])
    for bad in (b"<html>503 Service Unavailable</html>", good[: len(good) // 2]):
        server.files[url] = bad
        result = download("ukiyoe2photo")
        last = result.stderr.splitlines()[-1]  # after the progress bar
        assert result.exit_code == 1 and last.startswith("error: "), result.output
        assert "not a readable zip or tar archive" in last and "run again" in last
        assert list((i2i_home / "downloads").iterdir()) == []  # neither the file nor a pinned hash
    server.files[url] = good
    result = download("ukiyoe2photo")
    assert result.exit_code == 0, result.output
    assert (i2i_home / "datasets" / "ukiyoe2photo" / "trainA" / "a.png").is_file()
    assert [p.name for p in (i2i_home / "downloads").iterdir()] == ["ukiyoe2photo.zip.json"]


def test_hostile_dataset_archive_is_one_line(i2i_home, server):
    server.files["/cyclegan/datasets/monet2photo.zip"] = HOSTILE["zip with ../"][0]
    result = download("monet2photo")
    assert result.exit_code == 1 and result.stderr.splitlines()[-1].startswith("error: ")
    assert "refusing to extract it: member d/../../evil.txt leaves the folder" in result.stderr.splitlines()[-1]
    assert not (i2i_home / "datasets").exists() or list((i2i_home / "datasets").iterdir()) == []


def test_wrong_layout_is_refused(i2i_home, server):
    server.files["/cyclegan/datasets/vangogh2photo.zip"] = zip_bytes([("vangogh2photo/a.png", png())])
    result = download("vangogh2photo")
    assert result.exit_code == 1 and "plain layout, not the unpaired layout" in result.output
    assert list((i2i_home / "datasets").iterdir()) == []


def test_sr_dataset_keeps_only_its_hr_folder(i2i_home, server):
    server.files["/research/EDSR/Flickr2K.tar"] = tar_bytes(
        [("Flickr2K/Flickr2K_HR/000001.png", png()), ("Flickr2K/Flickr2K_LR_bicubic/X4/000001x4.png", png())],
        mode="w")
    result = download("flickr2k")  # names are case-insensitive
    assert result.exit_code == 0, result.output
    assert [p.name for p in (i2i_home / "datasets" / "Flickr2K").iterdir()] == ["000001.png"]


def test_unknown_and_login_datasets(i2i_home):
    result = download("nope")
    assert result.exit_code == 2 and "unknown dataset 'nope'; known: " in result.output
    result = download("cityscapes")
    assert result.exit_code == 1 and "cityscapes-dataset.com" in result.output
    assert str(i2i_home / "datasets" / "cityscapes") in result.output
