"""Import target for several uvicorn worker processes: `api.asgi:app`."""

from api.app import create_app

app = create_app()
