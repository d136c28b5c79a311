"""The evidence service: ``pilotlab serve`` (a web application over one registry).

::

    from pilotlab.service import create_app
    app = create_app("postgresql+psycopg://...")   # an ASGI app (FastAPI): pages and /api

See ``docs/architecture.md`` (the service) and the README's "Sharing evidence" section.
"""

from pilotlab.service.app import create_app
from pilotlab.service.server import serve

__all__ = ["create_app", "serve"]
