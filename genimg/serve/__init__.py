"""Scale-out on Ray Serve: ``python -m genimg serve --ray``.

Every served model is a Ray Serve deployment whose replicas run genimg's own task functions
(``genimg.serve.replica``); the dashboard runs in the ``serve`` process, unchanged, over a
pool whose models are *routed* to their deployments (``genimg.serve.route``,
``genimg.models.routes``). ``config`` plans the deployments from the catalog, a TOML file and
the cluster's resources; ``cluster`` starts or joins Ray, deploys and shuts down. Nothing
outside this package imports Ray: ``python app.py`` stays one process.
"""
