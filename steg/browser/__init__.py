"""The browser page: ONNX export, the static page (build, serve), the headless Chromium driver."""
