"""The ``svac demo`` page: a Gradio app over :class:`svac.demo.backend.DemoBackend`.

Layout: a video (upload, or one of ``examples/``) on the left; on the right a **Segment** tab
(query + button) and a **Chat** tab (a multi-turn conversation about the same video); below,
the results of the last segmentation: the answer, the overlay video, a per-object mask preview
at the frame the slider picks, and downloads (zip of the palette PNG masks, ``result.json``).
Under the preview, a click on the **Click to refine** image (one object at the slider's frame)
corrects that object there -- positive by default, negative with the radio -- through
:meth:`svac.outputs.SegmentationResult.refine`, and shows the refined result.
A chat turn whose answer segments something (holds ``[SEG]``) fills the same results; a
text-only turn answers in the chat alone.

Progress comes from the library's progress events (:mod:`svac.progress`, the same stages as
the command line's bars) fed to Gradio's tracker. Bad input (no video, unreadable file, empty
query) is reported on the page with the library's message, the one ``svac segment`` prints,
and the app keeps running.

Gradio is imported only inside :func:`require_gradio` (called by :func:`build_app`), never at import.
"""

from __future__ import annotations

import html
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from svac.demo.backend import DemoBackend, DemoRun, example_videos
from svac.errors import INPUT_ERRORS, MissingExtraError
from svac.progress import ProgressEvent

if TYPE_CHECKING:
    import gradio

    from svac.segmentation_model import SegmentationModel

#: How to install the optional dependencies of the demo (shown when Gradio is missing).
INSTALL_HINT = 'pip install -e ".[demo]" (in a source checkout) or pip install "svac[demo]"'
#: Element ids of the page's main parts (stable handles for browser tests and custom CSS).
ELEMENT_IDS = {
    "video": "svac-video", "query": "svac-query", "segment": "svac-segment", "answer": "svac-answer",
    "overlay": "svac-overlay", "frame": "svac-frame", "preview": "svac-preview", "masks_zip": "svac-masks-zip",
    "result_json": "svac-result-json", "status": "svac-status", "chatbot": "svac-chatbot",
    "message": "svac-message", "send": "svac-send", "new_chat": "svac-new-chat", "examples": "svac-examples",
    "refine_image": "svac-refine-image", "click_label": "svac-click-label", "refine_object": "svac-refine-object",
}
#: Width (pixels) up to which the image to click on is enlarged, by a whole factor (Gradio shows images at most 1:1).
REFINE_VIEW_WIDTH = 480
#: The choices of what a click on the refine image means (SAM-2's labels 1 and 0).
CLICK_LABELS = ("object here (positive)", "not the object (negative)")
#: Seconds between sweeps of Gradio's copies of served files, and the age at which they are deleted.
CACHE_SWEEP_SECONDS = 3600


def require_gradio() -> "gradio":
    """Import Gradio, the demo's optional dependency.

    Raises:
        svac.errors.MissingExtraError: when Gradio is not installed; the message gives the install command.
    """
    try:
        import gradio
    except ImportError as exc:
        raise MissingExtraError(f"svac demo needs Gradio, an optional extra: {INSTALL_HINT}") from exc
    return gradio


def _progress_feed(progress) -> Callable[[ProgressEvent], None]:
    """A :data:`svac.progress.ProgressCallback` that moves Gradio's tracker ``progress``."""
    def feed(event: ProgressEvent) -> None:
        progress((event.done, event.total), desc=event.stage, unit=event.unit)
    return feed


def _status(run: DemoRun) -> str:
    r = run.result
    t = r.timings
    objects = f"{r.num_objects} object{'s' if r.num_objects != 1 else ''}" if r.num_objects else "no object"
    size = f"{objects} over {run.num_frames} frames of {run.source.width}x{run.source.height}"
    if r.corrections:
        c = r.corrections[-1]
        label = "positive" if c.labels and c.labels[-1] == 1 else "negative"
        return (f"{size}; refined: object {c.object}, {label} click at ({c.points[-1][0]:.0f}, {c.points[-1][1]:.0f}) "
                f"on frame {c.frame} ({len(r.corrections)} correction(s)); refinement {t.total:.2f} s "
                f"(SAM-2 encoder {t.sam2_encoder:.2f} s, tracking {t.sam2_tracking:.2f} s)")
    stages = f" (SAM-2 encoder {t.sam2_encoder:.2f} s, LLM prefill {t.llm_prefill:.3f} s)" if t.sam2_encoder else ""
    return f"{size}; time {t.total:.2f} s{stages}"


def build_app(backend: DemoBackend, *, examples: list[Path] | None = None) -> "gradio.Blocks":
    """The page's Gradio Blocks, wired to ``backend`` (not launched).

    Args:
        backend: runs the requests.
        examples: example videos offered under the video (default: :func:`example_videos`).

    Raises:
        svac.errors.MissingExtraError: when Gradio is not installed.
    """
    gr = require_gradio()
    examples = example_videos() if examples is None else examples

    def user_error(exc: BaseException) -> Exception:
        return gr.Error(str(exc), print_exception=False)  # the user's mistake: no traceback in the log

    def view_scale(run: DemoRun) -> int:
        return max(1, REFINE_VIEW_WIDTH // run.source.width)

    def refine_view(run: DemoRun | None, frame: int, obj: int):
        """The object's preview at ``frame``, each pixel drawn as a k x k block (k = :func:`view_scale`)."""
        if run is None or run.result.num_objects == 0:
            return None
        image = backend.object_preview(run, min(int(frame), run.num_frames - 1), int(obj)).image
        k = view_scale(run)
        return image.repeat(k, axis=0).repeat(k, axis=1)

    def run_outputs(run: DemoRun, frame: int = 0, obj: int = 1) -> tuple:
        previews = backend.previews(run, frame)
        k = run.result.num_objects
        obj = obj if 1 <= obj <= k else 1
        return (
            run.result.text,
            str(run.files.overlay),
            gr.Slider(minimum=0, maximum=max(run.num_frames - 1, 1), value=frame, step=1,
                      interactive=run.num_frames > 1),
            [(p.image, p.caption) for p in previews],
            gr.DownloadButton(value=str(run.masks_zip), interactive=True),
            gr.DownloadButton(value=str(run.files.summary), interactive=True),
            _status(run),
            run,
            refine_view(run, frame, obj),
            gr.Dropdown(choices=list(range(1, k + 1)) or [1], value=obj, interactive=k > 1),
        )

    def on_segment(video, query, progress=gr.Progress()):
        progress(0.0, desc="reading the video, asking the model")
        try:
            run = backend.segment(video, query, progress=_progress_feed(progress))
        except INPUT_ERRORS as exc:
            raise user_error(exc) from exc
        return run_outputs(run)

    def on_preview(frame, run, obj):
        if run is None:
            return [], None
        frame = min(int(frame), run.num_frames - 1)
        return [(p.image, p.caption) for p in backend.previews(run, frame)], refine_view(run, frame, obj)

    def on_refine(frame, run, label, obj, evt, progress=gr.Progress()):
        if run is None:
            raise gr.Error("segment something first: a click refines the masks shown", print_exception=False)
        k = view_scale(run)
        x, y = evt.index[0] // k, evt.index[1] // k  # the view's pixel -> the original frame's pixel
        progress(0.0, desc="refining: SAM-2 tracks the object again from this frame")
        try:
            refined = backend.refine(run, frame=int(frame), point=(float(x), float(y)),
                                     positive=label == CLICK_LABELS[0], object=int(obj),
                                     progress=_progress_feed(progress))
        except INPUT_ERRORS as exc:
            raise user_error(exc) from exc
        return run_outputs(refined, int(frame), int(obj))

    on_refine.__annotations__["evt"] = gr.SelectData  # a real class (not a postponed string): Gradio passes the click

    def on_chat(video, message, history, chat, progress=gr.Progress()):
        progress(0.0, desc="reading the video, asking the model")
        try:
            if chat is None or chat[0] != video:
                chat = (video, backend.start_chat(video))
            response, run = backend.ask(chat[1], message, progress=_progress_feed(progress))
        except INPUT_ERRORS as exc:
            raise user_error(exc) from exc
        history = [*(history or []), {"role": "user", "content": html.escape(message.strip())},
                   {"role": "assistant", "content": html.escape(response.text)}]
        shown = run_outputs(run) if run is not None else (gr.skip(),) * len(results)  # text only: keep the results
        return (history, "", chat, *shown)

    with gr.Blocks(title="svac demo", analytics_enabled=False,
                   delete_cache=(CACHE_SWEEP_SECONDS, CACHE_SWEEP_SECONDS)) as app:
        gr.Markdown("## svac: referring video object segmentation\n"
                    f"Choose a video, then ask for an object in words. {html.escape(backend.model_description)}")
        run_state = gr.State(None)
        chat_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                video = gr.Video(label="Video", sources=["upload"], elem_id=ELEMENT_IDS["video"])
                if examples:
                    gr.Examples(examples=[[str(p)] for p in examples], inputs=[video], label="Examples",
                                elem_id=ELEMENT_IDS["examples"])
            with gr.Column(scale=1):
                with gr.Tabs():
                    with gr.Tab("Segment"):
                        query = gr.Textbox(label="Query", placeholder="e.g. the red square", lines=1,
                                           elem_id=ELEMENT_IDS["query"])
                        segment = gr.Button("Segment", variant="primary", elem_id=ELEMENT_IDS["segment"])
                    with gr.Tab("Chat"):
                        chatbot = gr.Chatbot(label="Chat about this video", height=260, render_markdown=False,
                                             elem_id=ELEMENT_IDS["chatbot"])
                        message = gr.Textbox(label="Message", placeholder="e.g. What is moving? Segment it.",
                                             lines=1, elem_id=ELEMENT_IDS["message"])
                        with gr.Row():
                            send = gr.Button("Send", variant="primary", elem_id=ELEMENT_IDS["send"])
                            new_chat = gr.Button("New conversation", elem_id=ELEMENT_IDS["new_chat"])
                answer = gr.Textbox(label="Answer", interactive=False, elem_id=ELEMENT_IDS["answer"])
                status = gr.Markdown(elem_id=ELEMENT_IDS["status"])
        with gr.Row():
            with gr.Column(scale=1):
                overlay = gr.Video(label="Overlay", interactive=False, elem_id=ELEMENT_IDS["overlay"])
            with gr.Column(scale=1):
                frame = gr.Slider(minimum=0, maximum=1, value=0, step=1, label="Frame", interactive=False,
                                  elem_id=ELEMENT_IDS["frame"])
                preview = gr.Gallery(label="Mask preview (one image per object)", columns=2, height="auto",
                                     object_fit="contain", preview=False, format="png", elem_id=ELEMENT_IDS["preview"])
                gr.Markdown("**Refine**: click on the image below to correct the object's mask at this frame; "
                            "SAM-2 then tracks it again forwards and backwards from it.")
                with gr.Row():
                    click_label = gr.Radio(list(CLICK_LABELS), value=CLICK_LABELS[0], label="A click means",
                                           elem_id=ELEMENT_IDS["click_label"])
                    refine_object = gr.Dropdown(choices=[1], value=1, label="Object", interactive=False,
                                                elem_id=ELEMENT_IDS["refine_object"])
                refine_image = gr.Image(label="Click to refine", interactive=False, type="numpy", format="png",
                                        height=320, buttons=[], elem_id=ELEMENT_IDS["refine_image"])
        with gr.Row():
            masks_zip = gr.DownloadButton("Masks (zip of palette PNGs)", interactive=False,
                                          elem_id=ELEMENT_IDS["masks_zip"])
            result_json = gr.DownloadButton("result.json", interactive=False, elem_id=ELEMENT_IDS["result_json"])

        results = [answer, overlay, frame, preview, masks_zip, result_json, status, run_state, refine_image,
                   refine_object]
        # one model: every event that runs it shares one queue slot
        model_queue = {"concurrency_id": "model", "concurrency_limit": 1}
        segment.click(on_segment, inputs=[video, query], outputs=results, **model_queue)
        query.submit(on_segment, inputs=[video, query], outputs=results, **model_queue)
        frame.input(on_preview, inputs=[frame, run_state, refine_object], outputs=[preview, refine_image],
                    trigger_mode="always_last")
        refine_object.input(refine_view, inputs=[run_state, frame, refine_object], outputs=[refine_image])
        refine_image.select(on_refine, inputs=[frame, run_state, click_label, refine_object], outputs=results,
                            **model_queue)
        chat_inputs = [video, message, chatbot, chat_state]
        chat_outputs = [chatbot, message, chat_state, *results]
        send.click(on_chat, inputs=chat_inputs, outputs=chat_outputs, **model_queue)
        message.submit(on_chat, inputs=chat_inputs, outputs=chat_outputs, **model_queue)
        new_chat.click(lambda: ([], None), outputs=[chatbot, chat_state])
        video.change(lambda: ([], None), outputs=[chatbot, chat_state])  # a new video starts a new conversation
    return app


@dataclass
class DemoServer:
    """A running demo (from :func:`launch_demo` with ``block=False``).

    Attributes:
        url: the local address of the page, e.g. ``http://127.0.0.1:7860/``.
        share_url: the public share link, or ``None``.
        app: the Gradio Blocks.
        work_dir: the run folders' folder (removed by :meth:`close`).
    """

    url: str
    share_url: str | None
    app: "gradio.Blocks"
    work_dir: Path

    def close(self) -> None:
        """Stop the server and remove the work folder."""
        try:
            self.app.close()
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)


@contextmanager
def _sigterm_stops_serving() -> Iterator[None]:
    """While serving in the foreground, SIGTERM stops the server as Ctrl-C does, so the work folder is removed.

    Only in the main thread (where Python delivers signals); the previous handler is restored after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def launch_demo(model: "SegmentationModel", *, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
                num_frames: int | None = None, clip_len: int | None = None, examples: list[Path] | None = None,
                block: bool = True, quiet: bool = False) -> DemoServer | None:
    """Serve the demo page for ``model``.

    Args:
        model: a loaded model (:func:`svac.loading.load_model`).
        host: address to listen on (``127.0.0.1``: this machine only).
        port: TCP port.
        share: also open a public Gradio share link (needs internet access).
        num_frames: T frames the MLLM sees (``None``: from the config).
        clip_len: frames per clip (``None``: from the config).
        examples: example videos (default: the repository's ``examples/``).
        block: serve until interrupted (Ctrl-C or SIGTERM), then clean up and return ``None``; with
            ``False``, return a :class:`DemoServer` at once (the caller closes it).
        quiet: do not print the address.

    Raises:
        svac.errors.MissingExtraError: when Gradio is not installed.
        OSError: when the port cannot be bound.
    """
    require_gradio()
    work_dir = Path(tempfile.mkdtemp(prefix="svac-demo-"))
    app = None
    serving = False
    try:
        backend = DemoBackend(model, work_dir / "runs", num_frames=num_frames, clip_len=clip_len)
        examples = example_videos() if examples is None else examples
        app = build_app(backend, examples=examples)
        allowed = sorted({str(p.parent.resolve()) for p in examples} | {str(work_dir)})
        app.queue()
        with _sigterm_stops_serving() if block else nullcontext():
            try:
                _, local_url, share_url = app.launch(server_name=host, server_port=port, share=share, quiet=quiet,
                                                     prevent_thread_lock=not block, allowed_paths=allowed,
                                                     ssr_mode=False, show_error=False)
            except KeyboardInterrupt:
                if not block:
                    raise
                return None  # stopped while starting: cleaned up below, as after serving
        if block:  # app.launch served until Ctrl-C or SIGTERM
            return None
        serving = True
        return DemoServer(url=local_url, share_url=share_url, app=app, work_dir=work_dir)
    finally:
        if not serving:
            if app is not None:
                app.close(verbose=False)
            shutil.rmtree(work_dir, ignore_errors=True)
