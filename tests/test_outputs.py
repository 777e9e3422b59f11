"""The output discipline every command shares (cvactive.outputs)."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from cvactive.errors import OutputError
from cvactive.outputs import (
    OWNER_NAME,
    atomic_open,
    check_dir_output,
    check_file_output,
    check_path_text,
    claim_dir,
    folder_lock,
    move_aside,
    path_lock,
    read_owner,
)


def test_check_file_output_refuses_folder_input_and_file_parent(tmp_path: Path) -> None:
    src = tmp_path / "pool.jsonl"
    src.write_text("x\n")
    with pytest.raises(OutputError, match="is a folder"):
        check_file_output(tmp_path)
    with pytest.raises(OutputError, match="also an input"):
        check_file_output(tmp_path / "." / "pool.jsonl", inputs=[src])
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_file_output(src / "sub" / "out.jsonl")
    assert check_file_output(tmp_path / "new" / "out.jsonl") == tmp_path / "new" / "out.jsonl"
    assert not (tmp_path / "new").exists()  # checking writes nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_file_output_refuses_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_file_output(ro / "out.jsonl")
    finally:
        ro.chmod(0o700)


def test_check_dir_output_refuses_overlap_with_input(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for bad in (data, data / "images" / "export", tmp_path):
        with pytest.raises(OutputError, match="overlaps the input"):
            check_dir_output(bad, inputs=[data])
    with pytest.raises(OutputError, match="is a file"):
        (tmp_path / "f").write_text("")
        check_dir_output(tmp_path / "f")
    assert check_dir_output(tmp_path / "out", inputs=[data]) == tmp_path / "out"


def test_path_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    name = os.fsdecode(b"clip-\xff.mp4")
    with pytest.raises(OutputError, match="not valid UTF-8"):
        check_path_text(tmp_path / name, "video")


def test_atomic_open_keeps_old_file_on_error(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(out) as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    with atomic_open(out) as fh:
        fh.write("new\n")
    assert out.read_text() == "new\n"


def _try_lock(folder: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        with folder_lock(folder, "harvest"):
            queue.put("locked")
    except OutputError as err:
        queue.put(str(err))


def test_folder_lock_refuses_second_process_naming_the_first(tmp_path: Path) -> None:
    with folder_lock(tmp_path, "harvest x.mp4"):
        queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        proc = multiprocessing.get_context("fork").Process(target=_try_lock, args=(str(tmp_path), queue))
        proc.start()
        proc.join(30)
        message = queue.get(timeout=5)
    assert f"pid {os.getpid()}" in message and "harvest x.mp4" in message
    with folder_lock(tmp_path, "again"):  # released when the holder leaves
        pass


def test_path_lock_is_per_output_name(tmp_path: Path) -> None:
    # flock conflicts between two open file descriptions, even in one process
    with path_lock(tmp_path / "a.jsonl", "score x.mp4"):
        held = rf"a\.jsonl is in use by pid {os.getpid()} .*score x\.mp4"
        with pytest.raises(OutputError, match=held), path_lock(tmp_path / "a.jsonl", "score y.mp4"):
            pass
        with path_lock(tmp_path / "b.jsonl", "score y.mp4"):  # another name in the same folder
            pass
    with path_lock(tmp_path / "a.jsonl", "again"):  # released when the holder leaves
        pass


def test_claim_dir_refuses_foreign_content_and_removes_only_its_files(tmp_path: Path) -> None:
    mine = tmp_path / "user"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(OutputError, match=r"not empty .* holiday\.jpg"):
        claim_dir(mine, "harvest")
    out = tmp_path / "out"
    owned = claim_dir(out, "harvest")
    (out / "frames").mkdir()
    (out / "frames" / "1.jpg").write_bytes(b"1")
    owned.record([out / "frames" / "1.jpg"])
    (out / "notes.txt").write_text("user's")  # a user adds a file to our folder
    again = claim_dir(out, "harvest")
    assert again.files == ["frames/1.jpg"]
    with pytest.raises(OutputError, match="output of cvactive harvest"):
        claim_dir(out, "export")
    removed = again.remove_owned()
    assert removed == [out / "frames" / "1.jpg"]
    assert (out / "notes.txt").read_text() == "user's" and not (out / "frames").exists()
    assert json.loads((out / OWNER_NAME).read_text())["files"] == []
    assert read_owner(tmp_path / "user") is None


def test_move_aside_renames_and_never_deletes(tmp_path: Path) -> None:
    out = tmp_path / "pool.jsonl"
    out.write_text("data")
    aside = move_aside(out)
    assert aside is not None and aside.read_text() == "data" and not out.exists()
    assert move_aside(out) is None


def test_portable_text_takes_the_machine_out_of_recorded_paths(tmp_path, monkeypatch):
    from cvactive.outputs import portable_path, portable_text

    repo = tmp_path / "checkout"
    assets = tmp_path / "shared" / "assets"
    repo.mkdir()
    assets.mkdir(parents=True)
    monkeypatch.setenv("CVACTIVE_ASSETS", str(assets))
    assert portable_path(repo / "data" / "w.pt", repo) == "data/w.pt"
    assert portable_path(assets / "aquarium" / "data.yaml", repo) == "../shared/assets/aquarium/data.yaml"
    assert portable_path("data/w.pt", repo) == "data/w.pt"
    command = f"cvactive loop --data {assets}/aquarium/data.yaml --out {repo}/data/studies/x"
    expected = "cvactive loop --data ../shared/assets/aquarium/data.yaml --out data/studies/x"
    assert portable_text(command, repo) == expected
    assert portable_text('{"start_from": "' + str(repo) + '/data/w.pt"}', repo) == '{"start_from": "data/w.pt"}'
    elsewhere = tmp_path / "main-checkout" / "data"  # a worktree whose data/ links to another checkout's
    elsewhere.mkdir(parents=True)
    (repo / "data").symlink_to(elsewhere)
    assert portable_text(f"--out {elsewhere}/studies/x", repo) == "--out data/studies/x"
    # another worktree whose data/ links into this checkout wrote its own path: on this machine it is ours
    (repo / "weights").mkdir()
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    (worktree / "data").symlink_to(repo / "weights")
    text = f'{{"start_from": "{worktree}/data/w.pt", "url": "http://127.0.0.1:8080/api/x", "lib": "/usr/lib/x"}}'
    expected = '{"start_from": "weights/w.pt", "url": "http://127.0.0.1:8080/api/x", "lib": "/usr/lib/x"}'
    assert portable_text(text, repo) == expected
