"""``svac demo``: try svac in the browser.

- :mod:`svac.demo.backend` -- what the page does, without the page (run a query or a chat turn,
  write its files with :func:`svac.video.export.export_result`, draw per-object mask previews);
  no Gradio needed.
- :mod:`svac.demo.app` -- the Gradio page built on the backend, and :func:`svac.demo.app.launch_demo`.

Gradio is an optional extra (``pip install -e ".[demo]"``) imported only when the page is built:
importing :mod:`svac` or this package never imports it.
"""
