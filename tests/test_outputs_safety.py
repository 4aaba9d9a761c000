"""Outputs that are safe by construction (issue 12 §3, §4): every command checks --out before any
compute, refuses a folder another run is writing, reports an unwritable place in one line, leaves
either the old results or the new ones after any failure, and reads frames it cannot trust as errors."""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svac.cli import main
from svac.errors import VideoReadError
from svac.video.export import export_result
from svac.video.reader import open_video

REPO = Path(__file__).resolve().parents[1]


class Computed(Exception):
    """Raised by a patched compute step: the command got past its output checks."""


def _frames_folder(root: Path, n: int = 3) -> Path:
    folder = root / "frames"
    folder.mkdir()
    for i in range(n):
        frame = np.full((16, 20, 3), 30, np.uint8)
        frame[4:10, 2 + 3 * i:8 + 3 * i] = (220, 30, 30)
        Image.fromarray(frame).save(folder / f"{i:05d}.png")
    return folder


def _one_error_line(err: str) -> str:
    """The one error line of a command's stderr (warnings and progress bars aside); no traceback."""
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith("svac: error:") and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ every command checks --out before any compute


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Small inputs every command accepts: a frame folder, an rvos dataset, DAVIS-layout folders, a run folder."""
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("inputs")
    video = _frames_folder(root)
    write_benchmark(root / "synth", videos=1, seed=0, num_frames=(12, 12), size=(64, 64), progress=False)
    for name in ("gt", "pred"):
        seq = root / name / "seq"
        seq.mkdir(parents=True)
        for t in range(3):
            Image.fromarray(np.pad(np.ones((4, 4), np.uint8), 2)).save(seq / f"{t:05d}.png")
    (root / "run").mkdir()
    return {"video": str(video), "synth": str(root / "synth"), "gt": str(root / "gt"), "pred": str(root / "pred"),
            "run": str(root / "run")}


COMMANDS = {
    "segment": (lambda i, out: ["segment", i["video"], "the square", "--out", out, "--overwrite", "--quiet",
                                "--model", "tiny.yaml"], ("svac.loading", "load_model")),
    "chat": (lambda i, out: ["chat", i["video"], "--out", out, "--overwrite", "--model", "tiny.yaml"],
             ("svac.loading", "load_model")),
    "export": (lambda i, out: ["export", i["run"], "--out", out, "--overwrite"],
               ("svac.recipes.finetune", "export_checkpoint")),
    "eval": (lambda i, out: ["eval", "rvos", "--data-root", i["synth"], "--split", "train", "--out", out,
                             "--model", "tiny.yaml", "--quiet"], ("svac.loading", "load_model")),
    "bench": (lambda i, out: ["bench", "frames", "--model", "tiny.yaml", "--out", out, "--overwrite", "--frames", "2",
                              "--clip-lens", "2", "--modes", "astc", "--repeats", "1", "--k-objects", "1",
                              "--quiet"], ("svac.loading", "load_model")),
    "data synth": (lambda i, out: ["data", "synth", "--out", out, "--videos", "1", "--seed", "0", "--overwrite"],
                   ("svac.data.synthetic.writer", "generate_video")),
    "data oracle-phrases": (lambda i, out: ["data", "oracle-phrases", i["synth"], "--split", "train", "--out", out,
                                            "--overwrite"], ("svac.data.synthetic.oracle_phrases", "oracle_expressions")),
    "metrics davis": (lambda i, out: ["metrics", "davis", "--gt", i["gt"], "--pred", i["pred"], "--out", out,
                                      "--overwrite"], ("svac.metrics.davis_eval", "_evaluate_sequence")),
    "train": (lambda i, out: ["train", "configs/train/svac_default_1_image.yaml", f"output_dir={out}", "--quiet"],
              ("svac.recipes.finetune", "run")),
}

def _run(argv: list[str]) -> int:
    """``svac ARGV`` in this process; ``svac bench frames ARGS`` runs ``eval/frame_scaling.py ARGS`` (called here)."""
    if argv[:2] == ["bench", "frames"]:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
        from frame_scaling import main as frame_scaling_main

        return frame_scaling_main(argv[2:])
    return main(argv)


HOLDER = textwrap.dedent("""
    import sys, time
    from svac.atomic_folder import FolderLock
    # both kinds: beside a folder swapped as a whole, inside a folder written in place
    locks = [FolderLock(p, inside=inside).acquire() for p in sys.argv[1:] for inside in (False, True)]
    print("locked", flush=True)
    time.sleep(120)
""")


@pytest.fixture(scope="module")
def holder(tmp_path_factory):
    """Another process holding the lock of one output folder per command (as a running svac would)."""
    root = tmp_path_factory.mktemp("locked")
    targets = {name: root / name.replace(" ", "_") for name in COMMANDS}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, *map(str, targets.values())], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield proc, targets
    proc.kill()
    proc.wait()


def _fake_statvfs(monkeypatch, under: Path, *, readonly: bool = False, full: bool = False):
    real = os.statvfs

    class Stat:
        def __init__(self, st):
            self.f_flag = st.f_flag | (os.ST_RDONLY if readonly else 0)
            self.f_bavail = 0 if full else st.f_bavail
            self.f_frsize, self.f_blocks, self.f_bsize = st.f_frsize, st.f_blocks, st.f_bsize

    def statvfs(path):
        st = real(path)
        return Stat(st) if str(os.path.abspath(path)).startswith(str(under)) else st

    monkeypatch.setattr(os, "statvfs", statvfs)


@pytest.mark.parametrize("case", ["a file", "read-only", "full disk", "locked"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_out_is_refused_in_one_line_before_any_compute(command, case, inputs, tmp_path, monkeypatch, capsys,
                                                           request):
    import importlib

    build, (module, attr) = COMMANDS[command]

    def computed(*args, **kwargs):
        raise Computed(f"{command} started computing")

    monkeypatch.setattr(importlib.import_module(module), attr, computed)
    monkeypatch.setattr("sys.stdin", io.StringIO("what is it?\n"))
    out = tmp_path / "out"
    if case == "a file":
        out.write_text("not a folder")
    elif case == "read-only":
        _fake_statvfs(monkeypatch, tmp_path, readonly=True)
    elif case == "full disk":
        _fake_statvfs(monkeypatch, tmp_path, full=True)
    else:
        holder = request.getfixturevalue("holder")
        out = holder[1][command]
    code = _run(build(inputs, str(out)))
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and str(out) in line
    expected = {"a file": "is a file", "read-only": "Read-only file system", "full disk": "No space left on device",
                "locked": "being written by another svac run (process {pid} "}[case]
    if case == "locked":
        expected = expected.format(pid=holder[0].pid)
    assert expected in line
    if case == "a file":
        assert out.read_text() == "not a folder"
    else:
        assert list(tmp_path.iterdir()) == []  # nothing created


# ------------------------------------------------------------------ failures while writing


@pytest.fixture(scope="module")
def results(tiny_model, tmp_path_factory):
    """Two different results on one 3-frame video: (source, old, new)."""
    video = _frames_folder(tmp_path_factory.mktemp("video"))
    source = open_video(video)
    old = tiny_model.segment(source, "the square", num_frames=3, clip_len=3)
    new = dataclasses.replace(old, masks=~old.masks, text="new answer")
    return source, old, new


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _svac_leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".svac" in p.name]


class Faults:
    """Make the k-th file-system write (rename, replace, mkdir, image save, text write, video open) under ``root`` fail."""

    def __init__(self, monkeypatch, root: Path, at: int, code: int = errno.EIO) -> None:
        import av
        import svac.atomic_folder as af

        self.root, self.at, self.count, self.code = str(root), at, 0, code
        self.fired = False
        for owner, name in ((os, "rename"), (os, "replace"), (os, "mkdir"), (Image.Image, "save"),
                            (Path, "write_text"), (av, "open"), (af, "_exchange")):
            if hasattr(owner, name):
                monkeypatch.setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, fn):
        def wrapped(*args, **kwargs):
            paths = [str(a) for a in args if isinstance(a, (str, Path, bytes)) and not isinstance(a, bytes)]
            if any(p.startswith(self.root) for p in paths):
                self.count += 1
                if self.count == self.at:
                    self.fired = True
                    raise OSError(self.code, os.strerror(self.code), paths[-1])
            return fn(*args, **kwargs)
        return wrapped


def test_overwrite_without_overlay_leaves_no_old_overlay(results, tmp_path):
    source, old, new = results
    export_result(old, source, tmp_path / "run")
    assert (tmp_path / "run" / "overlay.mp4").exists()
    export_result(new, source, tmp_path / "run", overwrite=True, overlay=False)
    assert not (tmp_path / "run" / "overlay.mp4").exists()
    assert json.loads((tmp_path / "run" / "result.json").read_text())["text"] == "new answer"


def test_a_failure_at_any_write_leaves_the_old_results_or_the_new_ones(results, tmp_path, monkeypatch):
    """Fault injection at every file-system write of `--overwrite --no-overlay`: never a mix."""
    source, old, new = results
    pristine, fresh, out = tmp_path / "pristine", tmp_path / "fresh", tmp_path / "work" / "run"
    export_result(old, source, pristine)
    (pristine / "notes.txt").write_text("the user's")  # kept in both states
    export_result(new, source, fresh, overlay=False)
    shutil.copy(pristine / "notes.txt", fresh / "notes.txt")
    states = {"old": _snapshot(pristine), "new": _snapshot(fresh)}
    outcomes = []
    for k in range(1, 200):
        shutil.rmtree(out.parent, ignore_errors=True)
        out.parent.mkdir()
        shutil.copytree(pristine, out)
        with monkeypatch.context() as m:
            faults = Faults(m, out.parent, k)
            try:
                export_result(new, source, out, overwrite=True, overlay=False)
            except OSError:
                pass
        now = _snapshot(out)
        state = next((name for name, snap in states.items() if snap == now), None)
        assert state is not None, f"fault {k}: {out} holds a mix: {sorted(now)}"
        assert _svac_leftovers(out.parent) == [], f"fault {k}"
        outcomes.append(state)
        if not faults.fired:
            break
    # some faults hit writes that cannot matter (mkdir of a parent that exists); every other one keeps the old state
    assert outcomes[-1] == "new" and outcomes.count("old") >= 5


def _disk_full_at_image(monkeypatch, n: int) -> None:
    """The n-th image saved raises ENOSPC, as a full disk would."""
    real_save = Image.Image.save
    calls = []

    def save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fp))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    video = _frames_folder(tmp_path)
    out = tmp_path / "run"
    _disk_full_at_image(monkeypatch, 2)
    code = main(["segment", str(video), "the square", "--out", str(out), "--model", "tiny.yaml", "--quiet"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "No space left on device" in line and str(out) in line
    assert not out.exists() and _svac_leftovers(tmp_path) == []


def test_disk_full_while_generating_a_benchmark_leaves_nothing(tmp_path, monkeypatch, capsys):
    _disk_full_at_image(monkeypatch, 20)
    code = main(["data", "synth", "--out", str(tmp_path / "bench"), "--videos", "2", "--seed", "0", "--size", "64x64",
                 "--min-frames", "12", "--max-frames", "12"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "No space left on device" in line
    assert list(tmp_path.iterdir()) == []


def test_result_tables_are_written_as_one_set(tmp_path, monkeypatch):
    """metrics davis: a failure while writing the second table leaves the previous three files, not a mix."""
    from svac.metrics.output import write_texts_atomic

    paths = [tmp_path / n for n in ("per_frame.csv", "per_sequence.csv", "global.json")]
    for p in paths:
        p.write_text("old")
    real_open = os.open
    opened = []

    def failing_open(path, flags, *args):
        if flags & os.O_CREAT:
            opened.append(path)
            if len(opened) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(OSError):
        write_texts_atomic({p: "new" for p in paths}, overwrite=True)
    assert [p.read_text() for p in paths] == ["old"] * 3 and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in paths)


# ------------------------------------------------------------------ two runs, permissions, killed runs


def test_a_stale_lock_of_a_killed_run_is_taken_over(tmp_path, capsys):
    video = _frames_folder(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".run.svac-lock").write_text(json.dumps({"pid": dead.pid, "host": "x"}))
    code = main(["segment", str(video), "the square", "--out", str(tmp_path / "run"), "--model", "tiny.yaml",
                 "--quiet", "--no-overlay"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "run"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_writer_uses_the_umask(results, tiny_model, tmp_path, umask):
    from svac.data.synthetic import write_benchmark
    from svac.evaluation.predictions import write_indexed_pngs
    from svac.metrics.output import write_text_atomic

    source, old, _ = results
    previous = os.umask(umask)
    try:
        export_result(old, source, tmp_path / "segment")
        tiny_model.save_pretrained(tmp_path / "checkpoint")
        write_benchmark(tmp_path / "synth", videos=1, seed=0, num_frames=(12, 12), size=(64, 64), progress=False)
        write_indexed_pngs(np.zeros((2, 4, 4), np.uint8), ["a", "b"], tmp_path / "predictions")
        write_text_atomic(tmp_path / "metrics" / "global.json", "{}", overwrite=False)
    finally:
        os.umask(previous)
    folders = [tmp_path / n for n in ("segment", "segment/masks", "checkpoint", "synth", "predictions", "metrics")]
    files = [tmp_path / n for n in ("segment/result.json", "segment/masks/1/00000.png", "checkpoint/config.json",
                                    "synth/synth_config.json", "predictions/a.png", "metrics/global.json")]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in folders} == {f.name: oct(0o777 & ~umask) for f in folders}
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: oct(0o666 & ~umask) for f in files}


# ------------------------------------------------------------------ chat


def test_chat_keeps_the_session_after_a_bad_turn_and_prompts_before_each_input(tmp_path, monkeypatch, capsys):
    from svac.chat import ChatSession
    from svac.errors import SegCountError
    from svac.outputs import ChatResponse

    def ask(self, message, **kwargs):
        if message == "bad":
            raise SegCountError("the answer holds 2 [SEG] token(s) but the video has 3 clip(s)", found=2, expected=3)
        return ChatResponse(text=f"answer to {message}")

    monkeypatch.setattr(ChatSession, "ask", ask)
    monkeypatch.setattr("sys.stdin", io.StringIO("first\nbad\nlast\n"))
    code = main(["chat", str(_frames_folder(tmp_path)), "--model", "tiny.yaml"])
    captured = capsys.readouterr()
    assert code == 0
    assert "answer to first" in captured.out and "answer to last" in captured.out
    assert "SegCountError" in captured.err and "the session goes on" in captured.err
    assert captured.out.count("you> ") == 4  # before each of the three inputs, and before the end of input


def test_chat_out_replaces_the_previous_session_as_a_whole(results, tmp_path, monkeypatch, capsys):
    from svac.chat import ChatSession
    from svac.outputs import ChatResponse

    source, old, new = results
    out = tmp_path / "chat"
    for turn in (1, 2, 3):  # an earlier session saved three turns
        export_result(old, source, out / f"turn-{turn:02d}")

    def ask(self, message, **kwargs):
        return ChatResponse(text="[SEG]", result=new if message == "segment it" else None)

    monkeypatch.setattr(ChatSession, "ask", ask)
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\nsegment it\n"))
    code = main(["chat", str(source.path), "--out", str(out), "--overwrite", "--model", "tiny.yaml"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["turn-02"]
    assert json.loads((out / "turn-02" / "result.json").read_text())["text"] == "new answer"
    assert _svac_leftovers(tmp_path) == []


# ------------------------------------------------------------------ frames svac cannot trust


def test_two_frames_with_one_name_are_an_error_naming_both(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "00001.jpg")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "00001.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "00002.png")
    with pytest.raises(VideoReadError, match="00001.jpg.*00001.png|00001.png.*00001.jpg"):
        open_video(folder)


def test_16_bit_png_frames_are_scaled_not_clipped(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    values = np.array([[0, 257, 32768, 65535]], np.uint16).repeat(4, axis=0)
    Image.fromarray(values).save(folder / "0.png")
    with Image.open(folder / "0.png") as im:
        assert im.mode.startswith("I;16")  # a real 16-bit PNG
    frame = open_video(folder).read([0])[0]
    assert frame[0, :, 0].tolist() == [0, 1, 128, 255] and (frame[..., 0] == frame[..., 2]).all()


def test_an_image_mode_svac_cannot_convert_is_an_error_naming_the_file(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(folder / "0.png", format="TIFF")  # mode F, named .png
    with pytest.raises(VideoReadError, match=r"0\.png.*mode F"):
        open_video(folder)
    with pytest.raises(VideoReadError, match=r"frames\[0\].*mode La"):
        open_video([Image.new("La", (4, 4))])


# ------------------------------------------------------------------ real read-only and full file systems


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-Urm", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


REAL_FS = pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -Urm` (user + mount namespaces) to mount "
                                                          "a tiny tmpfs or a read-only bind mount without root")


def _in_namespace(tmp_path: Path, setup: str, argv: list[str]) -> subprocess.CompletedProcess:
    script = f"{setup}\nexec {sys.executable} -m svac.cli " + " ".join(f"'{a}'" for a in argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["unshare", "-Urm", "sh", "-ec", script], capture_output=True, text=True, timeout=300,
                          env=env, cwd=str(REPO))


@REAL_FS
def test_a_really_full_disk_gives_one_line_and_keeps_the_old_results(tmp_path):
    video = _frames_folder(tmp_path)
    disk = tmp_path / "disk"
    disk.mkdir()
    setup = (f"mount -t tmpfs -o size=16k tmpfs {disk}\nmkdir -p {disk}/run/masks/1\n"
             f"printf old > {disk}/run/result.json\nprintf png > {disk}/run/masks/1/00000.png")
    check = f"\necho listing; find {disk} | sort; cat {disk}/run/result.json"
    proc = subprocess.run(["unshare", "-Urm", "sh", "-c", setup + f"\n{sys.executable} -m svac.cli segment {video} "
                           f"'the square' --out {disk}/run --overwrite --model tiny.yaml --quiet; echo rc=$?" + check],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          cwd=str(REPO))
    line = _one_error_line(proc.stderr)
    assert "rc=2" in proc.stdout and "No space left on device" in line and "keeps its previous results" in line
    listing = proc.stdout.split("listing", 1)[1].split()
    assert listing == [str(disk), f"{disk}/run", f"{disk}/run/masks", f"{disk}/run/masks/1",
                       f"{disk}/run/masks/1/00000.png", f"{disk}/run/result.json", "old"]


@REAL_FS
def test_a_really_read_only_folder_is_refused_before_the_model_loads(tmp_path):
    video = _frames_folder(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    proc = _in_namespace(tmp_path, f"mount --bind {ro} {ro}\nmount -o remount,bind,ro {ro}",
                         ["segment", str(video), "the square", "--out", f"{ro}/run", "--model", "does-not-exist.yaml"])
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2 and "Read-only file system" in line  # not the missing model: --out came first
    assert list(ro.iterdir()) == []
