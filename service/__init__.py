"""The inference service: a FastAPI app that serves the trained digit model over HTTP.

``service.app:app`` is the ASGI app, ``service.app.create_app`` its factory and
``python -m service`` (or ``mnist-serve``) runs it under uvicorn
with :class:`service.config.Settings`.
"""
